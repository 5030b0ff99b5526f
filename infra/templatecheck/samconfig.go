package templatecheck

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// Environments are the samconfig.toml environments the platform team deploys (`--config-env`).
var Environments = []string{"default", "dev", "prod"}

// SamConfig is samconfig.toml as parsed: environment -> command -> {parameters: {...}}.
type SamConfig map[string]any

// ParseSamConfig parses samconfig.toml.
func ParseSamConfig(b []byte) (SamConfig, error) {
	var c SamConfig
	err := toml.Unmarshal(b, &c)
	return c, err
}

// param looks an option up for a command, falling back to the environment's global parameters.
func (c SamConfig) param(env, cmd, key string) any {
	if v := path(map[string]any(c), env, cmd, "parameters", key); v != nil {
		return v
	}
	return path(map[string]any(c), env, "global", "parameters", key)
}

// overrideRE splits a parameter_overrides string into Key=Value pairs (values may be "quoted").
var overrideRE = regexp.MustCompile(`([A-Za-z0-9]+)=("(?:\\.|[^"\\])*"|'[^']*'|[^ ]+)`)

// ParameterOverrides returns an environment's deploy parameter_overrides as a map.
func (c SamConfig) ParameterOverrides(env string) map[string]string {
	out := map[string]string{}
	var items []string
	switch v := c.param(env, "deploy", "parameter_overrides").(type) {
	case string:
		items = []string{v}
	case []any:
		for _, e := range v {
			items = append(items, str(e))
		}
	}
	for _, it := range items {
		for _, m := range overrideRE.FindAllStringSubmatch(it, -1) {
			val := m[2]
			if len(val) >= 2 && (val[0] == '"' || val[0] == '\'') && val[len(val)-1] == val[0] {
				val = val[1 : len(val)-1]
			}
			out[m[1]] = val
		}
	}
	return out
}

// CheckSamConfig checks each environment: a stack name, IAM capability, overrides only for template
// parameters, every parameter without a default given, values that pass the parameter's
// AllowedPattern/AllowedValues/type/bounds and the template's Rules, and no value shaped like a
// credential.
func CheckSamConfig(t *Template, c SamConfig) []string {
	var p problems
	params := t.Parameters()
	for _, env := range Environments {
		if _, ok := c[env].(map[string]any); !ok {
			p.add("samconfig.toml: environment %q missing", env)
			continue
		}
		if str(c.param(env, "deploy", "stack_name")) == "" {
			p.add("samconfig.toml [%s]: stack_name missing", env)
		}
		if !strings.Contains(fmt.Sprint(c.param(env, "deploy", "capabilities")), "CAPABILITY_IAM") {
			p.add("samconfig.toml [%s]: deploy capabilities must include CAPABILITY_IAM (the stack creates roles)", env)
		}
		ov := c.ParameterOverrides(env)
		if ov["AgentAssignPublicIp"] == "" {
			p.add("samconfig.toml [%s]: set AgentAssignPublicIp explicitly: ENABLED for public subnets without a NAT gateway (a default VPC), DISABLED for private subnets (docs/deploy.md)", env)
		}
		for k, v := range ov {
			def, ok := params[k]
			if !ok {
				p.add("samconfig.toml [%s]: %s is not a template parameter", env, k)
				continue
			}
			for _, msg := range validateParam(def, v) {
				p.add("samconfig.toml [%s]: %s=%q: %s", env, k, v, msg)
			}
			if LooksSecret(v) {
				p.add("samconfig.toml [%s]: %s looks like a credential; store it in Secrets Manager and pass the ARN", env, k)
			}
		}
		var missing []string
		for name, def := range params {
			if _, hasDefault := def["Default"]; !hasDefault {
				if _, given := ov[name]; !given {
					missing = append(missing, name)
				}
			}
		}
		sort.Strings(missing)
		if len(missing) > 0 {
			p.add("samconfig.toml [%s]: parameters without a default not given: %s", env, strings.Join(missing, ", "))
		}
		p = append(p, checkPoolBounds(env, t.ParameterValues(ov))...)
		failed, err := t.FailedRules(t.ParameterValues(ov))
		if err != nil {
			p.add("samconfig.toml [%s]: evaluating the template's Rules: %v", env, err)
		}
		for _, f := range failed {
			p.add("samconfig.toml [%s]: CloudFormation would refuse the deploy: rule %s", env, f)
		}
	}
	return p
}

// validateParam checks a value as CloudFormation would (AllowedValues, AllowedPattern on each element
// of a list, numbers, min/max, AWS-specific id types by prefix).
func validateParam(def map[string]any, v string) []string {
	var out []string
	typ := str(def["Type"])
	values := []string{v}
	if typ == "CommaDelimitedList" || strings.HasPrefix(typ, "List<") {
		values = strings.Split(v, ",")
	}
	for _, e := range values {
		e = strings.TrimSpace(e)
		if allowed := list(def["AllowedValues"]); allowed != nil &&
			!slices.ContainsFunc(allowed, func(a any) bool { return fmt.Sprint(a) == e }) {
			out = append(out, fmt.Sprintf("not one of %v", allowed))
		}
		if pat := str(def["AllowedPattern"]); pat != "" {
			if re, err := regexp.Compile(`^(?:` + pat + `)$`); err == nil && !re.MatchString(e) {
				out = append(out, fmt.Sprintf("does not match %s", pat))
			}
		}
		if typ == "Number" {
			n, err := strconv.ParseFloat(e, 64)
			if err != nil {
				out = append(out, "not a number")
			} else {
				if mn, ok := num(def["MinValue"]); ok && n < mn {
					out = append(out, fmt.Sprintf("below MinValue %v", mn))
				}
				if mx, ok := num(def["MaxValue"]); ok && n > mx {
					out = append(out, fmt.Sprintf("above MaxValue %v", mx))
				}
			}
		}
		for prefix, awsType := range map[string]string{"subnet-": "Subnet::Id", "vpc-": "VPC::Id", "sg-": "SecurityGroup::Id"} {
			if strings.Contains(typ, awsType) && !strings.HasPrefix(e, prefix) {
				out = append(out, fmt.Sprintf("not a %s", awsType))
			}
		}
	}
	return out
}

// checkPoolBounds checks what the template's Rules cannot (they have no numeric comparison): the warm
// pool's minimum is at most its maximum (Application Auto Scaling refuses the scalable target
// otherwise and the deploy rolls back), and with the pool on the headroom fits under the maximum.
func checkPoolBounds(env string, values map[string]any) []string {
	var p problems
	number := func(name string) (float64, bool) { return num(values[name]) }
	lo, okLo := number(PoolMinParameter)
	hi, okHi := number(PoolMaxParameter)
	headroom, okHeadroom := number(PoolHeadroomParameter)
	if !okLo || !okHi {
		return nil
	}
	if lo > hi {
		p.add("samconfig.toml [%s]: %s=%v is above %s=%v (Application Auto Scaling refuses the scalable target)", env, PoolMinParameter, lo, PoolMaxParameter, hi)
	}
	if hi > 0 && okHeadroom && headroom > hi {
		p.add("samconfig.toml [%s]: %s=%v is above %s=%v: the pool could never hold its headroom", env, PoolHeadroomParameter, headroom, PoolMaxParameter, hi)
	}
	return p
}
