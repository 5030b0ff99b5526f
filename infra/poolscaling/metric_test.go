package poolscaling

import (
	"encoding/json"
	"testing"
	"time"
)

func TestEMFDocumentIsTheMetricDesign(t *testing.T) {
	at := time.Date(2026, 12, 1, 9, 0, 15, 0, time.UTC)
	raw, err := json.Marshal(EMFDocument("counselvideo-prod", true, at))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		AWS struct {
			Timestamp         int64
			CloudWatchMetrics []struct {
				Namespace  string
				Dimensions [][]string
				Metrics    []struct {
					Name, Unit        string
					StorageResolution int
				}
			}
		} `json:"_aws"`
		Pool           string
		PoolWorkerBusy *int
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	m := doc.AWS.CloudWatchMetrics
	if doc.AWS.Timestamp != at.UnixMilli() || len(m) != 1 || m[0].Namespace != Namespace ||
		len(m[0].Dimensions) != 1 || len(m[0].Dimensions[0]) != 1 || m[0].Dimensions[0][0] != DimensionName ||
		len(m[0].Metrics) != 1 || m[0].Metrics[0].Name != MetricName || m[0].Metrics[0].Unit != "Count" ||
		m[0].Metrics[0].StorageResolution != 1 {
		t.Fatalf("EMF metadata %s", raw)
	}
	// The dimension and the value are root members named as the metadata says (EMF's rule).
	if doc.Pool != "counselvideo-prod" || doc.PoolWorkerBusy == nil || *doc.PoolWorkerBusy != 1 {
		t.Fatalf("EMF members %s", raw)
	}
	idle, _ := json.Marshal(EMFDocument("p", false, at))
	if err := json.Unmarshal(idle, &doc); err != nil || *doc.PoolWorkerBusy != 0 {
		t.Fatalf("an idle worker emits %s", idle)
	}
}

func TestSampleTimeIsTheMiddleOfItsInterval(t *testing.T) {
	for _, c := range []struct{ at, want string }{
		{"09:00:00", "09:00:05"}, {"09:00:09.999", "09:00:05"}, {"09:00:10", "09:00:15"}, {"09:00:57", "09:00:55"},
	} {
		at, _ := time.Parse("15:04:05.999", c.at)
		want, _ := time.Parse("15:04:05", c.want)
		if got := SampleTime(at); !got.Equal(want) {
			t.Errorf("SampleTime(%s) = %s, want %s", c.at, got.Format("15:04:05"), c.want)
		}
	}
}

func TestQueriesAreTheMetricMath(t *testing.T) {
	out, in := Chosen(1, 10, 2).Queries("${PoolHeadroom}")
	if len(out) != 3 || len(in) != 3 {
		t.Fatalf("step queries %v / %v", out, in)
	}
	if out[0] != (MetricQuery{ID: "busy", Stat: "Sum"}) || out[1] != (MetricQuery{ID: "running", Stat: "SampleCount"}) {
		t.Fatalf("step statistics %v", out[:2])
	}
	if e := out[2]; e.Expression != "${PoolHeadroom} - (running - busy) / 1" || !e.ReturnData {
		t.Errorf("scale-out expression %+v", e)
	}
	if e := in[2]; e.Expression != "(running - busy) / 1 - ${PoolHeadroom}" || !e.ReturnData {
		t.Errorf("scale-in expression %+v", e)
	}
	tt, none := ChosenTargetTracking(1, 10, 2).Queries("4")
	if none != nil || len(tt) != 3 || tt[2].Expression != "100 * (busy + 6 * 4) / running" {
		t.Errorf("target tracking queries %v", tt)
	}
	// The expression is the policy's own metric: 6 samples per worker in a minute, so with 10
	// workers of which 7 are busy and headroom 4: 100 × (42 + 24) / 60 = 110 = utilization.
	d := NewDatapoint(0, time.Minute, 42, 60)
	if got := ChosenTargetTracking(1, 10, 4).utilization(d); got != 110 {
		t.Errorf("utilization %v, want 110", got)
	}
}

func TestAlarmsAreWhatNextEvaluates(t *testing.T) {
	p := Chosen(8, 146, 8)
	out, in := p.Alarms("8")
	if out.Period != 10*time.Second || out.EvaluationPeriods != 2 || out.Threshold != 0 ||
		out.Cooldown != time.Minute || out.MetricAggregationType != "Maximum" || len(out.Steps) != len(ladder) {
		t.Errorf("scale-out alarm %+v", out)
	}
	if in.EvaluationPeriods != 30 || in.Threshold != 1 || in.Cooldown != 5*time.Minute ||
		in.MetricAggregationType != "Minimum" || in.Steps[0].Adjustment != -2 {
		t.Errorf("scale-in alarm %+v", in)
	}
	// The alarm's own condition, deficit > threshold, is the policy's breach test: 7 idle of
	// headroom 8 breaches, 8 does not; excess 2 (> slack 1) breaches the scale-in alarm, 1 does not.
	for _, c := range []struct {
		idle    float64
		out, in bool
	}{{7, true, false}, {8, false, false}, {9, false, false}, {10, false, true}} {
		d := Datapoint{Busy: 20, Running: 20 + c.idle}
		deficit, excess := float64(p.Headroom)-d.idle(), d.idle()-float64(p.Headroom)
		if (deficit > out.Threshold) != c.out || p.breaching(scaleOut, d) != c.out {
			t.Errorf("%v idle: scale-out breach %v, want %v", c.idle, deficit > out.Threshold, c.out)
		}
		if (excess > in.Threshold) != c.in || p.breaching(scaleIn, d) != c.in {
			t.Errorf("%v idle: scale-in breach %v, want %v", c.idle, excess > in.Threshold, c.in)
		}
	}
}
