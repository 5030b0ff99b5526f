// Package emftest reads CloudWatch embedded metric format (EMF) lines out of a process's output and
// validates each against the specification, for tests: a line CloudWatch would not turn into metrics
// is an error here, not a silently missing metric in production.
// Specification: https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
// Limits as the AWS EMF client libraries enforce them (aws-embedded-metrics-node Constants.ts).
package emftest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// Limits.
const (
	MaxDimensionsPerSet   = 30
	MaxMetricsPerDocument = 100
	MaxValuesPerMetric    = 100
	maxNamespaceLen       = 255
	maxDimensionNameLen   = 250
	maxDimensionValueLen  = 1024
	maxMetricNameLen      = 1024
)

var (
	namespacePattern = regexp.MustCompile(`^[a-zA-Z0-9 ._#:/-]+$`)
	// Timestamps are milliseconds since the epoch: a value in seconds would fall in January 1970.
	minTimestamp = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	maxTimestamp = time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	units        = []string{
		"Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes",
		"Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count", "Bytes/Second",
		"Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second", "Bits/Second",
		"Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second", "Count/Second", "None",
	}
)

// Metric is one metric CloudWatch would extract from a line: one per directive, dimension set and
// metric definition.
type Metric struct {
	Namespace         string
	Name              string
	Unit              string
	StorageResolution int
	Dimensions        map[string]string
	Values            []float64
	Timestamp         time.Time
	// Doc is the whole line (properties such as session_id included).
	Doc map[string]any
}

// DimensionNames returns the metric's dimension names, sorted.
func (m Metric) DimensionNames() []string {
	var out []string
	for k := range m.Dimensions {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Validate checks one line against the specification and returns the metrics it carries.
func Validate(line []byte) ([]Metric, error) {
	var doc map[string]any
	if err := json.Unmarshal(line, &doc); err != nil {
		return nil, fmt.Errorf("not a JSON object: %v", err)
	}
	meta, ok := doc["_aws"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("no _aws object at the root")
	}
	if err := onlyMembers(meta, "_aws", "Timestamp", "CloudWatchMetrics"); err != nil {
		return nil, err
	}
	ts, ok := meta["Timestamp"].(float64)
	if !ok || ts != math.Trunc(ts) {
		return nil, fmt.Errorf("_aws.Timestamp must be an integer number of milliseconds, got %v", meta["Timestamp"])
	}
	if int64(ts) < minTimestamp || int64(ts) > maxTimestamp {
		return nil, fmt.Errorf("_aws.Timestamp %v is not milliseconds since the epoch", int64(ts))
	}
	directives, ok := meta["CloudWatchMetrics"].([]any)
	if !ok || len(directives) == 0 {
		return nil, fmt.Errorf("_aws.CloudWatchMetrics must be a non-empty array")
	}
	var out []Metric
	total := 0
	for i, dv := range directives {
		d, ok := dv.(map[string]any)
		where := fmt.Sprintf("CloudWatchMetrics[%d]", i)
		if !ok {
			return nil, fmt.Errorf("%s is not an object", where)
		}
		if err := onlyMembers(d, where, "Namespace", "Dimensions", "Metrics"); err != nil {
			return nil, err
		}
		ns, _ := d["Namespace"].(string)
		if strings.TrimSpace(ns) == "" || len(ns) > maxNamespaceLen || !namespacePattern.MatchString(ns) || strings.HasPrefix(ns, "AWS/") {
			return nil, fmt.Errorf("%s.Namespace %q is not a valid custom namespace", where, ns)
		}
		sets, err := dimensionSets(doc, d["Dimensions"], where)
		if err != nil {
			return nil, err
		}
		defs, ok := d["Metrics"].([]any)
		if !ok || len(defs) == 0 {
			return nil, fmt.Errorf("%s.Metrics must be a non-empty array", where)
		}
		total += len(defs)
		seen := map[string]bool{}
		for j, mv := range defs {
			mw := fmt.Sprintf("%s.Metrics[%d]", where, j)
			m, ok := mv.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%s is not an object", mw)
			}
			if err := onlyMembers(m, mw, "Name", "Unit", "StorageResolution"); err != nil {
				return nil, err
			}
			name, _ := m["Name"].(string)
			if strings.TrimSpace(name) == "" || len(name) > maxMetricNameLen || seen[name] {
				return nil, fmt.Errorf("%s.Name %q is empty, too long or repeated", mw, name)
			}
			seen[name] = true
			unit := "None"
			if u, present := m["Unit"]; present {
				s, ok := u.(string)
				if !ok || !slices.Contains(units, s) {
					return nil, fmt.Errorf("%s.Unit %v is not a CloudWatch unit", mw, u)
				}
				unit = s
			}
			res := 60
			if r, present := m["StorageResolution"]; present {
				if r != 1.0 && r != 60.0 {
					return nil, fmt.Errorf("%s.StorageResolution must be 1 or 60, got %v", mw, r)
				}
				res = int(r.(float64))
			}
			values, err := metricValues(doc[name])
			if err != nil {
				return nil, fmt.Errorf("%s: member %q: %v", mw, name, err)
			}
			for _, set := range sets {
				dims := map[string]string{}
				for _, k := range set {
					dims[k] = doc[k].(string)
				}
				out = append(out, Metric{Namespace: ns, Name: name, Unit: unit, StorageResolution: res, Dimensions: dims,
					Values: values, Timestamp: time.UnixMilli(int64(ts)).UTC(), Doc: doc})
			}
		}
	}
	if total > MaxMetricsPerDocument {
		return nil, fmt.Errorf("%d metric definitions in one document, at most %d", total, MaxMetricsPerDocument)
	}
	return out, nil
}

func dimensionSets(doc map[string]any, v any, where string) ([][]string, error) {
	raw, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%s.Dimensions must be an array of dimension sets", where)
	}
	var sets [][]string
	for i, sv := range raw {
		keys, ok := sv.([]any)
		if !ok {
			return nil, fmt.Errorf("%s.Dimensions[%d] is not an array", where, i)
		}
		if len(keys) > MaxDimensionsPerSet {
			return nil, fmt.Errorf("%s.Dimensions[%d] has %d dimensions, at most %d", where, i, len(keys), MaxDimensionsPerSet)
		}
		var set []string
		for _, kv := range keys {
			k, ok := kv.(string)
			if !ok || strings.TrimSpace(k) == "" || len(k) > maxDimensionNameLen || strings.HasPrefix(k, ":") || !ascii(k) || slices.Contains(set, k) {
				return nil, fmt.Errorf("%s.Dimensions[%d]: invalid or repeated dimension name %v", where, i, kv)
			}
			val, ok := doc[k].(string)
			if !ok {
				return nil, fmt.Errorf("%s.Dimensions[%d]: dimension %q has no string member at the root", where, i, k)
			}
			if strings.TrimSpace(val) == "" || len(val) > maxDimensionValueLen || !ascii(val) {
				return nil, fmt.Errorf("%s.Dimensions[%d]: dimension %q has an invalid value %q", where, i, k, val)
			}
			set = append(set, k)
		}
		sets = append(sets, set)
	}
	return sets, nil
}

func metricValues(v any) ([]float64, error) {
	switch x := v.(type) {
	case float64:
		return []float64{x}, nil
	case []any:
		if len(x) == 0 || len(x) > MaxValuesPerMetric {
			return nil, fmt.Errorf("%d values, want 1 to %d", len(x), MaxValuesPerMetric)
		}
		out := make([]float64, len(x))
		for i, e := range x {
			f, ok := e.(float64)
			if !ok {
				return nil, fmt.Errorf("value %d is not a number: %v", i, e)
			}
			out[i] = f
		}
		return out, nil
	case nil:
		return nil, fmt.Errorf("no value at the root")
	}
	return nil, fmt.Errorf("value is not a number or an array of numbers: %v", v)
}

// onlyMembers: "objects defined by this specification MUST NOT contain any additional members"
// (required members are checked where they are read).
func onlyMembers(m map[string]any, where string, allowed ...string) error {
	for k := range m {
		if !slices.Contains(allowed, k) {
			return fmt.Errorf("%s has the member %q, which the specification does not define", where, k)
		}
	}
	return nil
}

func ascii(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] > 0x7f {
			return false
		}
	}
	return true
}

// Lines validates every EMF line of a process's output (a line whose root object has "_aws") and
// returns their metrics. Any other line must not carry "_aws" anywhere: a metric nested in a log
// line is never extracted. Lines that are not JSON objects are skipped (runtime and emulator text).
func Lines(output string) ([]Metric, []string) {
	var out []Metric
	var problems []string
	for n, line := range strings.Split(output, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "{") {
			if strings.Contains(line, `"_aws"`) {
				problems = append(problems, fmt.Sprintf("line %d: EMF inside a non-JSON line is never extracted: %s", n+1, line))
			}
			continue
		}
		var doc map[string]any
		if json.Unmarshal([]byte(line), &doc) != nil {
			continue
		}
		if _, emf := doc["_aws"]; !emf {
			if strings.Contains(line, `"_aws"`) {
				problems = append(problems, fmt.Sprintf("line %d: _aws nested in a log line is never extracted: %s", n+1, line))
			}
			continue
		}
		ms, err := Validate([]byte(line))
		if err != nil {
			problems = append(problems, fmt.Sprintf("line %d: %v: %s", n+1, err, line))
			continue
		}
		out = append(out, ms...)
	}
	return out, problems
}

// Find returns the metrics named name whose dimensions are exactly dims.
func Find(ms []Metric, name string, dims map[string]string) []Metric {
	var out []Metric
	for _, m := range ms {
		if m.Name != name || len(m.Dimensions) != len(dims) {
			continue
		}
		match := true
		for k, v := range dims {
			match = match && m.Dimensions[k] == v
		}
		if match {
			out = append(out, m)
		}
	}
	return out
}

// Sum adds the values of ms.
func Sum(ms []Metric) float64 {
	total := 0.0
	for _, m := range ms {
		for _, v := range m.Values {
			total += v
		}
	}
	return total
}

// Dims is a dimension map: Stack = stack, plus name/value pairs.
func Dims(stack string, pairs ...string) map[string]string {
	d := map[string]string{"Stack": stack}
	for i := 0; i+1 < len(pairs); i += 2 {
		d[pairs[i]] = pairs[i+1]
	}
	return d
}

// Buffer collects the lines a metrics.Recorder writes in a test (safe for concurrent writers).
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns what was written.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Metrics validates every line written so far, failing t on any problem, and empties the buffer.
func (b *Buffer) Metrics(t testing.TB) []Metric {
	t.Helper()
	b.mu.Lock()
	out := b.b.String()
	b.b.Reset()
	b.mu.Unlock()
	ms, problems := Lines(out)
	for _, p := range problems {
		t.Error(p)
	}
	return ms
}
