package poolsim

import (
	"fmt"
	"strings"
	"time"
)

// Point is one corner of a load shape: at At, arrivals come at Fraction of the peak rate.
type Point struct {
	At       time.Duration
	Fraction float64
}

// Scenario is a demand shape over time. The peak rate is that of the scale's peak concurrent
// sessions: peak sessions / mean session length (Little's law), so Fraction 1 held long enough
// gives the scale's peak concurrency.
type Scenario struct {
	Name        string
	Description string
	// Shape is piecewise linear between its points; the last point's time is the scenario's end.
	Shape []Point
	// Sessions arriving in [MeasureFrom, MeasureUntil) are reported, and costs are counted over
	// the same window; before it the pool and the sessions warm up.
	MeasureFrom, MeasureUntil time.Duration
	// Regular spaces arrivals evenly at the rate (one every 1/rate) instead of a Poisson process:
	// the hand-worked cases.
	Regular bool
}

// Duration is when the last arrival may come.
func (s Scenario) Duration() time.Duration { return s.Shape[len(s.Shape)-1].At }

// Fraction is the arrival rate at t as a fraction of the peak rate.
func (s Scenario) Fraction(t time.Duration) float64 {
	for i := 1; i < len(s.Shape); i++ {
		a, b := s.Shape[i-1], s.Shape[i]
		if t <= b.At {
			if b.At == a.At {
				return b.Fraction
			}
			return a.Fraction + (b.Fraction-a.Fraction)*float64(t-a.At)/float64(b.At-a.At)
		}
	}
	return s.Shape[len(s.Shape)-1].Fraction
}

func (s Scenario) maxFraction() float64 {
	m := 0.0
	for _, p := range s.Shape {
		m = max(m, p.Fraction)
	}
	return m
}

// Validate reports a shape the simulation cannot run.
func (s Scenario) Validate() error {
	if len(s.Shape) < 2 || s.Shape[0].At != 0 {
		return fmt.Errorf("scenario %s: the shape needs at least two points, the first at 0", s.Name)
	}
	for i, p := range s.Shape {
		if p.Fraction < 0 || (i > 0 && p.At < s.Shape[i-1].At) {
			return fmt.Errorf("scenario %s: point %d goes back in time or below 0", s.Name, i)
		}
	}
	if s.MeasureFrom < 0 || s.MeasureUntil <= s.MeasureFrom || s.MeasureUntil > s.Duration() {
		return fmt.Errorf("scenario %s: the measured window must lie within the scenario", s.Name)
	}
	return nil
}

func clock(h, m int) time.Duration { return time.Duration(h)*time.Hour + time.Duration(m)*time.Minute }

// The scenarios of the capacity model.
var (
	// Steady: the scale's peak concurrency all the time (measured after an hour of warm-up).
	Steady = Scenario{
		Name:        "steady",
		Description: "constant arrivals at the peak rate for 5 h; measured from 1 h on",
		Shape:       []Point{{0, 1}, {clock(5, 0), 1}},
		MeasureFrom: clock(1, 0), MeasureUntil: clock(5, 0),
	}
	// Lunch: a school day 08:00-16:00 with a lunch-hour peak (times since 08:00).
	Lunch = Scenario{
		Name: "lunch",
		Description: "08:00-16:00 at 25% of the peak rate, rising from 10:30 to the peak rate " +
			"12:00-13:00 and back by 14:30; measured from 08:30",
		Shape: []Point{{0, 0.25}, {clock(2, 30), 0.25}, {clock(4, 0), 1}, {clock(5, 0), 1},
			{clock(6, 30), 0.25}, {clock(8, 0), 0.25}},
		MeasureFrom: clock(0, 30), MeasureUntil: clock(8, 0),
	}
	// ExamSpike: a 5× jump in arrivals within 10 minutes.
	ExamSpike = Scenario{
		Name: "exam-spike",
		Description: "1 h at 20% of the peak rate, then 5× within 10 min, held 1 h, back over 30 min; " +
			"measured over the jump and the hour at 5× only",
		Shape: []Point{{0, 0.2}, {clock(1, 0), 0.2}, {clock(1, 10), 1}, {clock(2, 10), 1},
			{clock(2, 40), 0.2}, {clock(3, 0), 0.2}},
		MeasureFrom: clock(1, 0), MeasureUntil: clock(2, 10),
	}
	// Day: the load shape assumed for the monthly cost, midnight to midnight.
	Day = Scenario{
		Name: "day",
		Description: "a full day: 5% of the peak rate at midnight, 2% at 06:00, 30% at 08:00, 60% at 10:30, " +
			"the peak 12:00-13:00, 60% at 14:30, 45% at 18:00, 60% at 21:00, 5% at midnight",
		Shape: []Point{{0, 0.05}, {clock(6, 0), 0.02}, {clock(8, 0), 0.30}, {clock(10, 30), 0.60},
			{clock(12, 0), 1}, {clock(13, 0), 1}, {clock(14, 30), 0.60}, {clock(18, 0), 0.45},
			{clock(21, 0), 0.60}, {clock(24, 0), 0.05}},
		MeasureFrom: 0, MeasureUntil: clock(24, 0),
	}
)

// Scenarios are the capacity model's scenarios, in report order.
var Scenarios = []Scenario{Steady, Lunch, ExamSpike, Day}

// ScenarioNamed finds a scenario by name.
func ScenarioNamed(name string) (Scenario, error) {
	var names []string
	for _, s := range Scenarios {
		if s.Name == name {
			return s, nil
		}
		names = append(names, s.Name)
	}
	return Scenario{}, fmt.Errorf("no scenario %q (have %s)", name, strings.Join(names, ", "))
}
