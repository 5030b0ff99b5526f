package templatecheck

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// fargateMemoryRanges are AWS's supported task memory values per CPU value above 256 (Amazon ECS
// Developer Guide, "Task CPU and memory"): lowest, highest and step, in MiB.
var fargateMemoryRanges = map[int][3]int{
	512: {1024, 4096, 1024}, 1024: {2048, 8192, 1024}, 2048: {4096, 16384, 1024},
	4096: {8192, 30720, 1024}, 8192: {16384, 61440, 4096}, 16384: {32768, 122880, 8192},
}

// FargateMemoryValid reports whether a Fargate task of cpu units may have mem MiB.
func FargateMemoryValid(cpu, mem int) bool {
	if cpu == 256 {
		return mem == 512 || mem == 1024 || mem == 2048
	}
	r, ok := fargateMemoryRanges[cpu]
	return ok && mem >= r[0] && mem <= r[1] && (mem-r[0])%r[2] == 0
}

// ParameterValues returns the template's parameter defaults overridden by values, as CloudFormation
// passes them to Rules: list types as lists of strings, everything else as a string.
func (t *Template) ParameterValues(values map[string]string) map[string]any {
	out := map[string]any{}
	for name, def := range t.Parameters() {
		v, given := values[name]
		if !given {
			if def["Default"] == nil {
				continue
			}
			v = scalarString(def["Default"])
		}
		if typ := str(def["Type"]); typ == "CommaDelimitedList" || strings.HasPrefix(typ, "List<") {
			var items []string
			for _, s := range strings.Split(v, ",") {
				items = append(items, strings.TrimSpace(s))
			}
			out[name] = items
			continue
		}
		out[name] = v
	}
	return out
}

// FailedRules evaluates the template's Rules with the given parameter values, as CloudFormation does
// before it creates or updates anything, and returns "<rule>: <AssertDescription>" for each failed
// assertion. An intrinsic the evaluator does not know is an error, never a pass.
func (t *Template) FailedRules(params map[string]any) ([]string, error) {
	var failed []string
	rules := asMap(t.Root["Rules"])
	for _, name := range sortedKeys(rules) {
		rule := asMap(rules[name])
		if cond, ok := rule["RuleCondition"]; ok {
			holds, err := ruleBool(cond, params)
			if err != nil {
				return nil, fmt.Errorf("rule %s: RuleCondition: %w", name, err)
			}
			if !holds {
				continue
			}
		}
		for _, a := range list(rule["Assertions"]) {
			holds, err := ruleBool(asMap(a)["Assert"], params)
			if err != nil {
				return nil, fmt.Errorf("rule %s: %w", name, err)
			}
			if !holds {
				failed = append(failed, name+": "+str(asMap(a)["AssertDescription"]))
			}
		}
	}
	return failed, nil
}

func ruleBool(v any, params map[string]any) (bool, error) {
	x, err := ruleValue(v, params)
	if err != nil {
		return false, err
	}
	b, ok := x.(bool)
	if !ok {
		return false, fmt.Errorf("%v is not a condition", v)
	}
	return b, nil
}

// ruleValue evaluates the rule-specific intrinsics (Fn::And, Fn::Contains, Fn::EachMemberEquals,
// Fn::EachMemberIn, Fn::Equals, Fn::Not, Fn::Or, Ref) over literal strings, numbers and lists.
func ruleValue(v any, params map[string]any) (any, error) {
	name, arg, isIntrinsic := intrinsic(v)
	if !isIntrinsic {
		switch x := v.(type) {
		case string, bool:
			return x, nil
		case float64:
			return scalarString(x), nil
		case []any:
			return evalStrings(x, params)
		}
		return nil, fmt.Errorf("unsupported value %v", v)
	}
	args := list(arg)
	switch name {
	case "Ref":
		p, ok := params[str(arg)]
		if !ok {
			return nil, fmt.Errorf("Ref %v: no such parameter or no value", arg)
		}
		return p, nil
	case "Fn::Not":
		if len(args) != 1 {
			return nil, fmt.Errorf("Fn::Not takes one condition")
		}
		b, err := ruleBool(args[0], params)
		return !b, err
	case "Fn::And", "Fn::Or":
		and := name == "Fn::And"
		for _, a := range args {
			b, err := ruleBool(a, params)
			if err != nil {
				return nil, err
			}
			if b != and {
				return !and, nil
			}
		}
		return and, nil
	}
	if len(args) != 2 {
		return nil, fmt.Errorf("%s takes two arguments", name)
	}
	a, err := ruleValue(args[0], params)
	if err != nil {
		return nil, err
	}
	b, err := ruleValue(args[1], params)
	if err != nil {
		return nil, err
	}
	as, aIsList := a.([]string)
	bs, bIsList := b.([]string)
	switch {
	case name == "Fn::Equals" && !aIsList && !bIsList:
		return fmt.Sprint(a) == fmt.Sprint(b), nil
	case name == "Fn::Contains" && aIsList && !bIsList:
		return slices.Contains(as, fmt.Sprint(b)), nil
	case name == "Fn::EachMemberEquals" && aIsList && !bIsList:
		return !slices.ContainsFunc(as, func(s string) bool { return s != fmt.Sprint(b) }), nil
	case name == "Fn::EachMemberIn" && aIsList && bIsList:
		return !slices.ContainsFunc(as, func(s string) bool { return !slices.Contains(bs, s) }), nil
	}
	return nil, fmt.Errorf("unsupported rule function %s with arguments %v", name, args)
}

// scalarString formats a JSON scalar as CloudFormation passes parameter values (3600, not 3.6e+03).
func scalarString(v any) string {
	if f, ok := v.(float64); ok {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return fmt.Sprint(v)
}

func evalStrings(items []any, params map[string]any) ([]string, error) {
	var out []string
	for _, it := range items {
		v, err := ruleValue(it, params)
		if err != nil {
			return nil, err
		}
		if s, ok := v.([]string); ok {
			out = append(out, s...)
		} else {
			out = append(out, fmt.Sprint(v))
		}
	}
	return out, nil
}

// CheckFargateRules evaluates the template's Rules for every AllowedValues combination of the agent
// task's Cpu and Memory parameters (other parameters at their defaults) and compares the outcome with
// FargateMemoryValid: a pair Fargate refuses must fail a rule before anything is created, and a valid
// pair must pass.
func CheckFargateRules(t *Template) []string {
	var p problems
	td, _, ok := agentContainer(t)
	if !ok {
		return []string{"no agent task definition (see the agent task check)"}
	}
	cpuParam, _ := refTarget(td.Props()["Cpu"])
	memParam, _ := refTarget(td.Props()["Memory"])
	allowed := func(param string) []string {
		var out []string
		for _, v := range list(t.Parameters()[param]["AllowedValues"]) {
			out = append(out, fmt.Sprint(v))
		}
		if len(out) == 0 {
			p.add("parameter %s: needs AllowedValues (Fargate sizes are a fixed table)", param)
		}
		return out
	}
	for _, cpu := range allowed(cpuParam) {
		for _, mem := range allowed(memParam) {
			failed, err := t.FailedRules(t.ParameterValues(map[string]string{cpuParam: cpu, memParam: mem}))
			if err != nil {
				return append(p, err.Error())
			}
			c, _ := strconv.Atoi(cpu)
			m, _ := strconv.Atoi(mem)
			switch valid := FargateMemoryValid(c, m); {
			case !valid && len(failed) == 0:
				p.add("%s=%s %s=%s is not a Fargate size, but no rule refuses it", cpuParam, cpu, memParam, mem)
			case valid && len(failed) > 0:
				p.add("%s=%s %s=%s is a valid Fargate size, but the rules refuse it: %v", cpuParam, cpu, memParam, mem, failed)
			}
		}
	}
	return p
}
