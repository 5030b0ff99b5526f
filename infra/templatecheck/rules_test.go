package templatecheck

import (
	"strings"
	"testing"
)

// TestFargateMemoryValid pins the table against AWS's documented rows (edges and steps).
func TestFargateMemoryValid(t *testing.T) {
	for _, c := range []struct {
		cpu, mem int
		ok       bool
	}{
		{256, 512, true}, {256, 2048, true}, {256, 3072, false},
		{512, 512, false}, {512, 1024, true}, {512, 4096, true}, {512, 5120, false},
		{1024, 1024, false}, {1024, 8192, true}, {1024, 9216, false},
		{2048, 4096, true}, {2048, 16384, true}, {2048, 3072, false},
		{4096, 30720, true}, {4096, 31744, false},
		{8192, 16384, true}, {8192, 20480, true}, {8192, 17408, false},
		{16384, 122880, true}, {16384, 36864, false},
		{384, 1024, false},
	} {
		if got := FargateMemoryValid(c.cpu, c.mem); got != c.ok {
			t.Errorf("FargateMemoryValid(%d, %d) = %v, want %v", c.cpu, c.mem, got, c.ok)
		}
	}
}

// TestRulesEvaluator runs the evaluator on rules using every supported function.
func TestRulesEvaluator(t *testing.T) {
	tpl, err := Parse([]byte(`{
	  "Parameters": {
	    "Size": {"Type": "String", "Default": "small"},
	    "Zones": {"Type": "CommaDelimitedList", "Default": "a,b"},
	    "Count": {"Type": "Number", "Default": 3}
	  },
	  "Rules": {
	    "SmallNeedsTwoZones": {
	      "RuleCondition": {"Fn::Equals": [{"Ref": "Size"}, "small"]},
	      "Assertions": [
	        {"Assert": {"Fn::EachMemberIn": [{"Ref": "Zones"}, ["a", "b"]]}, "AssertDescription": "zones a or b"},
	        {"Assert": {"Fn::Not": [{"Fn::Contains": [{"Ref": "Zones"}, ""]}]}, "AssertDescription": "no empty zone"}
	      ]
	    },
	    "CountIsThreeOrSmall": {
	      "Assertions": [{"Assert": {"Fn::Or": [{"Fn::Equals": [{"Ref": "Count"}, 3]}, {"Fn::And": [{"Fn::Equals": [{"Ref": "Size"}, "small"]}, {"Fn::EachMemberEquals": [{"Ref": "Zones"}, "a"]}]}]}, "AssertDescription": "count"}]
	    }
	  }
	}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		values map[string]string
		want   string // joined failures
	}{
		{nil, ""},
		{map[string]string{"Zones": "a,c"}, "SmallNeedsTwoZones: zones a or b"},
		{map[string]string{"Zones": ""}, "SmallNeedsTwoZones: zones a or b|SmallNeedsTwoZones: no empty zone"},
		{map[string]string{"Size": "large", "Zones": "c"}, ""},
		{map[string]string{"Count": "4"}, "CountIsThreeOrSmall: count"},
		{map[string]string{"Count": "4", "Zones": "a"}, ""},
	} {
		failed, err := tpl.FailedRules(tpl.ParameterValues(c.values))
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(failed, "|"); got != c.want {
			t.Errorf("%v: failed %q, want %q", c.values, got, c.want)
		}
	}

	// A function the evaluator does not know is an error, never a silent pass.
	asMap(asMap(tpl.Root["Rules"])["CountIsThreeOrSmall"])["Assertions"] = []any{
		map[string]any{"Assert": map[string]any{"Fn::RefAll": "AWS::EC2::VPC::Id"}}}
	if _, err := tpl.FailedRules(tpl.ParameterValues(nil)); err == nil {
		t.Error("an unsupported rule function was evaluated without an error")
	}
}
