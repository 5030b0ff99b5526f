// Command bench-sweeper measures one sweeper run over many open sessions against a LiveKit that
// answers slowly: the real livekit-server behind a proxy that delays every request, DynamoDB Local
// with the production table layout, and the ECS double. Each configuration sweeps its own freshly
// seeded table under a Lambda-like deadline. It writes a markdown report.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"

	"counselvideo/infra/ecsdouble"
	"counselvideo/infra/localstack"
	"counselvideo/shared/app"
	"counselvideo/shared/config"
	"counselvideo/shared/logging"
	"counselvideo/shared/sessions"
	"counselvideo/shared/sweeper"
)

func main() {
	out := flag.String("out", "bench/results/sweeper.md", "report file")
	n := flag.Int("sessions", 1000, "open sessions per configuration")
	latency := flag.Duration("latency", 100*time.Millisecond, "delay the proxy adds to every LiveKit request")
	deadline := flag.Duration("deadline", 50*time.Second, "the run's deadline (the sweeper Lambda's timeout)")
	workers := flag.String("workers", "1,8,16,32", "comma-separated concurrency settings to measure (0: the default)")
	gone := flag.Int("gone-percent", 10, "share of sessions whose room is gone (closed by the sweep)")
	flag.Parse()
	var list []int
	for _, w := range strings.Split(*workers, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(w))
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench-sweeper: -workers:", err)
			os.Exit(2)
		}
		list = append(list, v)
	}
	if err := run(*out, *n, *latency, *deadline, list, *gone); err != nil {
		fmt.Fprintln(os.Stderr, "bench-sweeper:", err)
		os.Exit(1)
	}
}

type result struct {
	workers          int
	examined, closed int
	errors           int
	complete         bool
	wall             time.Duration
	requests         int64
}

// slowProxy forwards to LiveKit after a fixed delay and counts the requests.
type slowProxy struct {
	delay    time.Duration
	next     http.Handler
	requests atomic.Int64
}

func (p *slowProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.requests.Add(1)
	select {
	case <-time.After(p.delay):
	case <-r.Context().Done():
		return
	}
	p.next.ServeHTTP(w, r)
}

func run(out string, n int, latency, deadline time.Duration, workers []int, gonePercent int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	stack, err := localstack.Start(ctx, localstack.Options{})
	if err != nil {
		return err
	}
	defer stack.Stop()
	ecs := ecsdouble.New()
	defer ecs.Close()
	for k, v := range map[string]string{
		"AWS_REGION": localstack.Region, "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local",
		"AWS_ENDPOINT_URL_DYNAMODB": stack.DynamoDB.Endpoint, "AWS_ENDPOINT_URL_ECS": ecs.URL, "AWS_EC2_METADATA_DISABLED": "true",
	} {
		os.Setenv(k, v)
	}
	target, err := url.Parse(stack.LiveKit.URL)
	if err != nil {
		return err
	}
	proxy := &slowProxy{delay: latency, next: httputil.NewSingleHostReverseProxy(target)}
	srv := httptest.NewServer(proxy)
	defer srv.Close()
	rooms := lksdk.NewRoomServiceClient(stack.LiveKit.URL, stack.LiveKit.APIKey, stack.LiveKit.APISecret)

	var results []result
	for i, w := range workers {
		table := fmt.Sprintf("bench-sweep-%d", i)
		if err := stack.DynamoDB.CreateTables(ctx, table, table+"-categories"); err != nil {
			return err
		}
		store := sessions.NewDynamoStore(stack.DynamoDB.Client, table)
		fmt.Fprintf(os.Stderr, "bench-sweeper: seeding %d sessions for workers=%d\n", n, w)
		if err := seed(ctx, store, rooms, n, gonePercent); err != nil {
			return err
		}
		cfg, err := config.Load(config.Sweeper, func(k string) string {
			return map[string]string{
				"LIVEKIT_URL": srv.URL, "LIVEKIT_API_KEY": stack.LiveKit.APIKey, "LIVEKIT_API_SECRET": stack.LiveKit.APISecret,
				"SESSIONS_TABLE": table, "AGENT_LAUNCHER": "ecs", "ECS_CLUSTER": "bench", "LOG_LEVEL": "warn",
			}[k]
		})
		if err != nil {
			return err
		}
		awsCfg, err := app.AWSConfig(ctx)
		if err != nil {
			return err
		}
		sw, err := app.NewSweeper(cfg, awsCfg, app.Deps{Log: logging.New(io.Discard, "warn")})
		if err != nil {
			return err
		}
		sw.Concurrency = w
		before := proxy.requests.Load()
		rctx, rcancel := context.WithTimeout(ctx, deadline)
		start := time.Now()
		rep, err := sw.Run(rctx)
		wall := time.Since(start)
		rcancel()
		if err != nil {
			return fmt.Errorf("workers=%d: %w", w, err)
		}
		r := result{workers: w, examined: rep.Examined, closed: len(rep.Closed), errors: rep.Errors, complete: rep.Complete,
			wall: wall, requests: proxy.requests.Load() - before}
		if r.workers == 0 {
			r.workers = sweeper.DefaultConcurrency
		}
		fmt.Fprintf(os.Stderr, "bench-sweeper: workers=%d examined=%d closed=%d errors=%d complete=%v in %.1fs\n",
			r.workers, r.examined, r.closed, r.errors, r.complete, wall.Seconds())
		results = append(results, r)
	}
	return write(out, n, latency, deadline, gonePercent, results)
}

// seed writes n open sessions created 10 to 50 minutes ago, agent joined, and creates their rooms
// in LiveKit except for gonePercent of them (lost room_finished: the sweep closes those).
func seed(ctx context.Context, store *sessions.DynamoStore, rooms *lksdk.RoomServiceClient, n, gonePercent int) error {
	base := time.Now().UTC().Add(-50 * time.Minute)
	jobs := make(chan int)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range jobs {
				if err := seedOne(ctx, store, rooms, base.Add(time.Duration(i)*2*time.Second), i%100 < gonePercent); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		})
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

func seedOne(ctx context.Context, store *sessions.DynamoStore, rooms *lksdk.RoomServiceClient, created time.Time, gone bool) error {
	id := uuid.NewString()
	s := sessions.Session{SessionID: id, UserID: "bench-" + id, CategoryID: "c", CategoryName: "C", Mode: sessions.ModeVideo,
		RoomName: sessions.RoomName(id), RoomSID: "RM_" + id[:12], Status: sessions.StatusActive, CreatedAt: created,
		StartedAt: created.Add(time.Second), StudentJoinedAt: created.Add(20 * time.Second), AgentJoinedAt: created.Add(15 * time.Second),
		AgentTaskID: "arn:aws:ecs:us-east-1:000000000000:task/bench/" + id}
	if _, err := store.Create(ctx, s, sessions.Admission{LockTTL: time.Hour}); err != nil {
		return err
	}
	if gone {
		return nil
	}
	// Rooms outlive the benchmark: nobody joins them.
	_, err := rooms.CreateRoom(ctx, &livekit.CreateRoomRequest{Name: s.RoomName, EmptyTimeout: 3600})
	return err
}

func write(out string, n int, latency, deadline time.Duration, gonePercent int, results []result) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Sweeper at scale\n\n")
	fmt.Fprintf(&b, "Measured %s on %s (%d cores), %s, by `go run ./infra/cmd/bench-sweeper` (part of `make bench`).\n",
		time.Now().UTC().Format(time.RFC3339), cpuModel(), runtime.NumCPU(), runtime.Version())
	fmt.Fprintf(&b, "One sweeper run (`shared/sweeper`, wired as the Lambda by `shared/app`) over %d open sessions on DynamoDB\n", n)
	fmt.Fprintf(&b, "Local, against the real livekit-server behind a proxy that delays every LiveKit request by %s;\n", latency)
	fmt.Fprintf(&b, "%d%% of the rooms are gone (those sessions are closed: end recorded, room delete, ECS StopTask on\n", gonePercent)
	fmt.Fprintf(&b, "the double). Each setting sweeps its own freshly seeded table with a %s deadline, as the Lambda's\n", deadline)
	fmt.Fprintf(&b, "timeout gives it; the sweeper stops starting checks %s before it.\n\n", sweeper.DefaultStopMargin)
	fmt.Fprintf(&b, "| workers | sessions examined | closed | errors | whole list | sweep time (s) | sessions/s | LiveKit requests |\n")
	fmt.Fprintf(&b, "|---:|---:|---:|---:|---|---:|---:|---:|\n")
	for _, r := range results {
		whole := "yes"
		if !r.complete {
			whole = "no: the next run resumes at the cursor"
		}
		def := ""
		if r.workers == sweeper.DefaultConcurrency {
			def = " (default)"
		}
		fmt.Fprintf(&b, "| %d%s | %d | %d | %d | %s | %.1f | %.0f | %d |\n", r.workers, def, r.examined, r.closed, r.errors, whole,
			r.wall.Seconds(), float64(r.examined)/r.wall.Seconds(), r.requests)
	}
	fmt.Fprintf(&b, "\nOne worker is how the sweeper worked before (one session at a time): at this latency it cannot get\n")
	fmt.Fprintf(&b, "through the list within one run, which is why runs resume from a persisted cursor. A healthy session\n")
	fmt.Fprintf(&b, "costs two LiveKit calls (ListRooms, ListParticipants); one whose room is gone, ListRooms and DeleteRoom.\n")
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	return os.WriteFile(out, []byte(b.String()), 0o644)
}

func cpuModel() string {
	raw, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}
