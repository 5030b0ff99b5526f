package integration

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"counselvideo/shared/sessions"
)

// TestStoreAgentReplacedOnce: the replacement's conditional write, on DynamoDB Local and the memory
// store alike: of concurrent webhooks one wins, the others see the winner's record; a closed session
// takes none; the replacement's task is recorded only on an open session.
func TestStoreAgentReplacedOnce(t *testing.T) {
	stores := map[string]sessions.Store{"dynamodb": sessionStore(), "memory": sessions.NewMemoryStore()}
	for name, st := range stores {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			user := fmt.Sprintf("repl-user-%s-%d", name, time.Now().UnixNano())
			t0 := time.Now().UTC().Truncate(time.Millisecond)
			id := user + "-1"
			s := sessions.Session{SessionID: id, UserID: user, CategoryID: "c", CategoryName: "C", Mode: "video",
				RoomName: sessions.RoomName(id), Status: sessions.StatusStarting, CreatedAt: t0}
			if _, err := st.Create(ctx, s, sessions.Admission{LockTTL: time.Hour}); err != nil {
				t.Fatal(err)
			}
			if err := st.MarkStarted(ctx, id, sessions.Started{RoomSID: "RM_1", AgentTaskID: "task-1", AgentSource: "cold", At: t0}); err != nil {
				t.Fatal(err)
			}
			if err := st.RecordStudentJoin(ctx, id, t0.Add(time.Second)); err != nil {
				t.Fatal(err)
			}

			var wins atomic.Int32
			var wg sync.WaitGroup
			for i := range 6 {
				wg.Go(func() {
					got, err := st.MarkAgentReplaced(ctx, id, sessions.AgentLoss{ParticipantSID: "PA_lost", At: t0.Add(time.Duration(10+i) * time.Second)})
					switch {
					case err == nil:
						wins.Add(1)
						if got.Status != sessions.StatusActive || got.AgentLostSID != "PA_lost" || !got.Replaced() || got.AgentTaskID != "task-1" {
							t.Errorf("winner's record: %+v", got)
						}
					case errors.Is(err, sessions.ErrConflict):
						if !got.Replaced() || got.AgentLostSID != "PA_lost" {
							t.Errorf("conflict without the winner's record: %+v", got)
						}
					default:
						t.Error(err)
					}
				})
			}
			wg.Wait()
			if n := wins.Load(); n != 1 {
				t.Fatalf("%d webhooks recorded the replacement", n)
			}
			// A later loss (another participant) finds the replacement taken.
			if got, err := st.MarkAgentReplaced(ctx, id, sessions.AgentLoss{ParticipantSID: "PA_second", At: t0.Add(time.Minute)}); !errors.Is(err, sessions.ErrConflict) || got.AgentLostSID != "PA_lost" {
				t.Fatalf("second loss: %+v %v", got, err)
			}
			if err := st.RecordAgentTask(ctx, id, "task-2"); err != nil {
				t.Fatal(err)
			}
			if got, _ := st.Get(ctx, id); got.AgentTaskID != "task-2" || got.Status != sessions.StatusActive {
				t.Fatalf("after RecordAgentTask: %+v", got)
			}

			if _, err := st.End(ctx, id, sessions.Ending{Status: sessions.StatusFailed, At: t0.Add(2 * time.Minute), Reason: "agent lost"}); err != nil {
				t.Fatal(err)
			}
			if err := st.RecordAgentTask(ctx, id, "task-3"); !errors.Is(err, sessions.ErrConflict) {
				t.Fatalf("RecordAgentTask on a closed session: %v", err)
			}
			// A closed session gets no replacement.
			id2 := user + "-2"
			s2 := s
			s2.SessionID, s2.RoomName = id2, sessions.RoomName(id2)
			if _, err := st.Create(ctx, s2, sessions.Admission{LockTTL: time.Hour}); err != nil {
				t.Fatal(err)
			}
			if _, err := st.End(ctx, id2, sessions.Ending{Status: sessions.StatusEnded, At: t0.Add(time.Minute), Reason: "x"}); err != nil {
				t.Fatal(err)
			}
			if got, err := st.MarkAgentReplaced(ctx, id2, sessions.AgentLoss{ParticipantSID: "PA_x", At: t0.Add(2 * time.Minute)}); !errors.Is(err, sessions.ErrConflict) || got.Replaced() {
				t.Fatalf("closed session: %+v %v", got, err)
			}
			if _, err := st.MarkAgentReplaced(ctx, "missing-"+user, sessions.AgentLoss{At: t0}); !errors.Is(err, sessions.ErrNotFound) {
				t.Fatalf("missing session: %v", err)
			}
		})
	}
}
