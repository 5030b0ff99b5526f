package emftest

import (
	"fmt"
	"strings"
	"testing"
)

const valid = `{"_aws":{"Timestamp":1772445600000,"CloudWatchMetrics":[{"Namespace":"CounselVideo","Dimensions":[["Stack"],["Stack","Reason"]],"Metrics":[{"Name":"SessionsEnded","Unit":"Count"}]}]},"Stack":"s","Reason":"room_finished","SessionsEnded":1,"session_id":"x"}`

func TestValidDocument(t *testing.T) {
	ms, err := Validate([]byte(valid))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || len(Find(ms, "SessionsEnded", map[string]string{"Stack": "s"})) != 1 ||
		len(Find(ms, "SessionsEnded", map[string]string{"Stack": "s", "Reason": "room_finished"})) != 1 {
		t.Fatalf("one metric per dimension set expected: %+v", ms)
	}
	if ms[0].Unit != "Count" || ms[0].Values[0] != 1 || ms[0].StorageResolution != 60 || ms[0].Doc["session_id"] != "x" {
		t.Fatalf("%+v", ms[0])
	}
}

// Each rule of the specification fails a document that breaks it.
func TestInvalidDocuments(t *testing.T) {
	manyDims := `["` + strings.Repeat(`D","`, 30) + `D"]`
	var defs, members []string
	for i := range 101 {
		defs = append(defs, fmt.Sprintf(`{"Name":"M%d"}`, i))
		members = append(members, fmt.Sprintf(`"M%d":1`, i))
	}
	cases := map[string]string{
		"not json":                   `{"_aws":`,
		"no _aws":                    `{"Stack":"s","X":1}`,
		"extra _aws member":          strings.Replace(valid, `"Timestamp"`, `"Extra":1,"Timestamp"`, 1),
		"timestamp in seconds":       strings.Replace(valid, "1772445600000", "1772445600", 1),
		"timestamp as string":        strings.Replace(valid, "1772445600000", `"1772445600000"`, 1),
		"fractional timestamp":       strings.Replace(valid, "1772445600000", "1772445600000.5", 1),
		"no directives":              `{"_aws":{"Timestamp":1772445600000,"CloudWatchMetrics":[]}}`,
		"no namespace":               strings.Replace(valid, `"Namespace":"CounselVideo",`, "", 1),
		"AWS namespace":              strings.Replace(valid, `"CounselVideo"`, `"AWS/Lambda"`, 1),
		"no dimensions":              strings.Replace(valid, `"Dimensions":[["Stack"],["Stack","Reason"]],`, "", 1),
		"dimension set not array":    strings.Replace(valid, `[["Stack"],`, `["Stack",`, 1),
		"dimension without member":   strings.Replace(valid, `"Reason":"room_finished",`, "", 1),
		"dimension value not string": strings.Replace(valid, `"Reason":"room_finished"`, `"Reason":3`, 1),
		"empty dimension value":      strings.Replace(valid, `"room_finished"`, `""`, 1),
		"31 dimensions":              strings.Replace(valid, `["Stack","Reason"]`, manyDims, 1),
		"repeated dimension":         strings.Replace(valid, `["Stack","Reason"]`, `["Stack","Stack"]`, 1),
		"no metrics":                 strings.Replace(valid, `"Metrics":[{"Name":"SessionsEnded","Unit":"Count"}]`, `"Metrics":[]`, 1),
		"metric without name":        strings.Replace(valid, `"Name":"SessionsEnded",`, "", 1),
		"metric without value":       strings.Replace(valid, `"SessionsEnded":1,`, "", 1),
		"value not a number":         strings.Replace(valid, `"SessionsEnded":1`, `"SessionsEnded":"1"`, 1),
		"empty value array":          strings.Replace(valid, `"SessionsEnded":1`, `"SessionsEnded":[]`, 1),
		"bad unit":                   strings.Replace(valid, `"Unit":"Count"`, `"Unit":"Sessions"`, 1),
		"bad resolution":             strings.Replace(valid, `"Unit":"Count"`, `"Unit":"Count","StorageResolution":5`, 1),
		"extra directive member":     strings.Replace(valid, `"Namespace"`, `"Extra":1,"Namespace"`, 1),
		"extra metric member":        strings.Replace(valid, `"Unit":"Count"`, `"Unit":"Count","Value":1`, 1),
		"101 metrics": `{"_aws":{"Timestamp":1772445600000,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[["Stack"]],"Metrics":[` +
			strings.Join(defs, ",") + `]}]},"Stack":"s",` + strings.Join(members, ",") + `}`,
	}
	for name, doc := range cases {
		_, err := Validate([]byte(doc))
		t.Logf("%s: %v", name, err)
		if err == nil {
			t.Errorf("%s: accepted %s", name, doc)
		}
	}
}

func TestLines(t *testing.T) {
	out := strings.Join([]string{
		`START RequestId: 1 Version: $LATEST`,
		`{"time":"2026-03-02T10:00:00Z","level":"INFO","msg":"session started","session_id":"x"}`,
		valid,
		`{"level":"INFO","msg":"nested","metrics":{"_aws":{}}}`,
		strings.Replace(valid, "1772445600000", "17", 1),
		`2026-03-02T10:00:00Z INFO {"_aws":{"Timestamp":1}}`,
		``,
	}, "\n")
	ms, problems := Lines(out)
	if len(ms) != 2 {
		t.Errorf("%d metrics from the valid line, want 2", len(ms))
	}
	want := []string{"line 4: _aws nested", "line 5: _aws.Timestamp", "line 6: EMF inside a non-JSON line"}
	if len(problems) != len(want) {
		t.Fatalf("problems %q", problems)
	}
	for i, w := range want {
		if !strings.HasPrefix(problems[i], w) {
			t.Errorf("problem %d %q, want %q…", i, problems[i], w)
		}
	}
}
