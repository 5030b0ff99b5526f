package integration

import (
	"context"
	"fmt"
	"testing"
	"time"

	"counselvideo/shared/sessions"
	"counselvideo/shared/sweeper"
)

// TestSweepPagingConformance pages through the open sessions with a cursor, on DynamoDB Local and on
// the memory store: every session once, oldest first, resuming after a cursor whose session has
// ended since, an empty answer (not DynamoDB's start-key error) for a cursor past the time window,
// and the cursor item round trip.
func TestSweepPagingConformance(t *testing.T) {
	type store interface {
		sessions.Store
		sweeper.Store
	}
	for name, st := range map[string]store{"dynamodb": sessionStore(), "memory": sessions.NewMemoryStore()} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			run := time.Now().UnixNano()
			// Far in the past, so this window holds only this test's sessions of the shared table.
			base := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(run%1e6) * time.Minute)
			window := base.Add(time.Minute)
			var ids []string
			for i := range 12 {
				id := fmt.Sprintf("page-%d-%02d", run, i)
				created := base.Add(time.Duration(i) * time.Millisecond)
				if i == 7 {
					created = base.Add(6 * time.Millisecond) // same creation time as the one before
				}
				s := sessions.Session{SessionID: id, UserID: "page-user-" + id, CategoryID: "c", CategoryName: "C", Mode: sessions.ModeVideo,
					RoomName: sessions.RoomName(id), Status: sessions.StatusStarting, CreatedAt: created}
				if _, err := st.Create(ctx, s, sessions.Admission{LockTTL: time.Hour}); err != nil {
					t.Fatal(err)
				}
				ids = append(ids, id)
			}
			pageAll := func(from sessions.SweepCursor) []sessions.Session {
				var got []sessions.Session
				for pages := 0; ; pages++ {
					page, more, err := st.ListOpenPage(ctx, window, from, 5)
					if err != nil || pages > 10 {
						t.Fatalf("page %d: %v", pages, err)
					}
					got = append(got, page...)
					if len(page) > 0 {
						from = sessions.CursorAt(page[len(page)-1])
					}
					if !more {
						return got
					}
				}
			}
			got := pageAll(sessions.SweepCursor{})
			seen := map[string]int{}
			for i, s := range got {
				seen[s.SessionID]++
				if i > 0 && s.CreatedAt.Before(got[i-1].CreatedAt) {
					t.Fatalf("not oldest first at %d: %v after %v", i, s.CreatedAt, got[i-1].CreatedAt)
				}
			}
			if len(got) != len(ids) || len(seen) != len(ids) {
				t.Fatalf("paged %d sessions (%d distinct), want %d", len(got), len(seen), len(ids))
			}

			// The session at the cursor ends: resuming there goes on with the ones after it.
			at := got[4]
			if _, err := st.End(ctx, at.SessionID, sessions.Ending{Status: sessions.StatusEnded, At: window, Reason: "test"}); err != nil {
				t.Fatal(err)
			}
			rest := pageAll(sessions.CursorAt(at))
			if len(rest) != len(got)-5 || rest[0].SessionID != got[5].SessionID {
				t.Fatalf("resumed after an ended session: %d sessions, first %v", len(rest), rest[0].SessionID)
			}
			// A cursor at or after the window's end: nothing left, no error.
			if page, more, err := st.ListOpenPage(ctx, got[3].CreatedAt, sessions.CursorAt(got[8]), 5); err != nil || len(page) != 0 || more {
				t.Fatalf("cursor past the window: %d %v %v", len(page), more, err)
			}

			// The cursor item round trip.
			c := sessions.CursorAt(got[9])
			if err := st.SaveSweepCursor(ctx, c); err != nil {
				t.Fatal(err)
			}
			if back, err := st.LoadSweepCursor(ctx); err != nil || back.SessionID != c.SessionID || !back.CreatedAt.Equal(c.CreatedAt) {
				t.Fatalf("loaded %+v %v, saved %+v", back, err, c)
			}
			if err := st.SaveSweepCursor(ctx, sessions.SweepCursor{}); err != nil {
				t.Fatal(err)
			}
			if back, err := st.LoadSweepCursor(ctx); err != nil || !back.IsZero() {
				t.Fatalf("after reset: %+v %v", back, err)
			}
			for _, id := range ids {
				_, _ = st.End(ctx, id, sessions.Ending{Status: sessions.StatusEnded, At: window, Reason: "test cleanup"})
			}
		})
	}
}
