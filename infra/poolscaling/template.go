package poolscaling

import "time"

// What the template declares for the step scaling policy, in the terms of
// AWS::CloudWatch::Alarm and AWS::ApplicationAutoScaling::ScalingPolicy, so the template check can
// compare template.yaml with this package. Both alarms are metric-math alarms on the high-resolution
// metric; each has one step scaling policy (AdjustmentType ChangeInCapacity) as its AlarmActions.
const (
	ComparisonOperator = "GreaterThanThreshold"
	// TreatMissingData: a period without samples (no worker running) keeps the alarm's state; a
	// pool that is on always has at least Min workers emitting.
	TreatMissingData = "missing"
	AdjustmentType   = "ChangeInCapacity"
	// The breach size Application Auto Scaling takes from the alarm's datapoints: the largest
	// deficit (scale out for the worst moment) and the smallest excess (scale in only what was idle
	// all along). Next computes with the same aggregations.
	ScaleOutAggregation = "Maximum"
	ScaleInAggregation  = "Minimum"
)

// AlarmSpec is one alarm and the scaling policy it invokes.
type AlarmSpec struct {
	Queries           []MetricQuery // the alarm's Metrics; every MetricStat uses Period
	Period            time.Duration
	EvaluationPeriods int // = DatapointsToAlarm
	Threshold         float64
	// The scaling policy's StepScalingPolicyConfiguration.
	Cooldown              time.Duration
	MetricAggregationType string
	Steps                 []StepAdjustment
}

// Alarms are the step policy's two alarms, with the headroom written as the template refers to it
// (for example "${PoolHeadroom}" inside !Sub). Both use ComparisonOperator and TreatMissingData.
func (p Policy) Alarms(headroom string) (scaleOut, scaleIn AlarmSpec) {
	out, in := p.Queries(headroom)
	scaleOut = AlarmSpec{
		Queries: out, Period: p.Period, EvaluationPeriods: p.ScaleOutDatapoints, Threshold: 0,
		Cooldown: p.ScaleOutCooldown, MetricAggregationType: ScaleOutAggregation, Steps: ScaleOutSteps(),
	}
	scaleIn = AlarmSpec{
		Queries: in, Period: p.Period, EvaluationPeriods: p.ScaleInDatapoints, Threshold: float64(p.ScaleInSlack),
		Cooldown: p.ScaleInCooldown, MetricAggregationType: ScaleInAggregation, Steps: p.ScaleInSteps(),
	}
	return scaleOut, scaleIn
}
