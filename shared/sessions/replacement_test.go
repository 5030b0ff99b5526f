package sessions

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestMemoryStoreAgentReplacedOnce: of many concurrent callers one records the replacement; the
// others see ErrConflict with the winner's record; a closed session takes none.
func TestMemoryStoreAgentReplacedOnce(t *testing.T) {
	ctx := context.Background()
	m := NewMemoryStore()
	s := newSession("s-repl", "u-repl")
	s.Status, s.AgentTaskID = StatusActive, "task-1"
	m.Put(s)

	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			got, err := m.MarkAgentReplaced(ctx, s.SessionID, AgentLoss{ParticipantSID: "PA_lost", At: t0.Add(time.Duration(i) * time.Second)})
			switch {
			case err == nil:
				wins.Add(1)
			case errors.Is(err, ErrConflict):
				if !got.Replaced() || got.AgentLostSID != "PA_lost" {
					t.Errorf("conflict without the winner's record: %+v", got)
				}
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d callers recorded the replacement", wins.Load())
	}
	if err := m.RecordAgentTask(ctx, s.SessionID, "task-2"); err != nil {
		t.Fatal(err)
	}
	if got, _ := m.Get(ctx, s.SessionID); got.AgentTaskID != "task-2" || !got.Replaced() {
		t.Fatalf("after RecordAgentTask: %+v", got)
	}

	if _, err := m.End(ctx, s.SessionID, Ending{Status: StatusFailed, At: t0.Add(time.Minute), Reason: "agent lost"}); err != nil {
		t.Fatal(err)
	}
	if err := m.RecordAgentTask(ctx, s.SessionID, "task-3"); !errors.Is(err, ErrConflict) {
		t.Fatalf("RecordAgentTask on a closed session: %v", err)
	}
	closed := newSession("s-closed", "u-closed")
	closed.Status = StatusEnded
	m.Put(closed)
	if got, err := m.MarkAgentReplaced(ctx, closed.SessionID, AgentLoss{ParticipantSID: "PA_x", At: t0}); !errors.Is(err, ErrConflict) || got.Replaced() {
		t.Fatalf("closed session: %+v %v", got, err)
	}
	if _, err := m.MarkAgentReplaced(ctx, "missing", AgentLoss{At: t0}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing session: %v", err)
	}
}
