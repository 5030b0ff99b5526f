// Command bench-lambda measures the API Lambda as deployed code runs: cold start (Init Duration
// reported by the Lambda Runtime Interface Emulator for the real bootstrap), warm create-room latency
// against the local stack (real livekit-server, DynamoDB Local, cognito-local; ECS double), and the
// zipped size of the arm64 bootstrap that `sam build` ships. It writes a markdown report.
package main

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"

	"counselvideo/infra/ecsdouble"
	"counselvideo/infra/localstack"
	"counselvideo/infra/seed"
	"counselvideo/shared/agents"
	"counselvideo/shared/categories"
	"counselvideo/shared/config"
	"counselvideo/shared/rooms"
	"counselvideo/shared/sessions"
)

func main() {
	out := flag.String("out", "bench/results/lambda.md", "report file")
	colds := flag.Int("cold", 5, "cold starts to measure")
	warm := flag.Int("warm", 50, "warm create-room invocations")
	baseline := flag.String("baseline", "", "git ref whose API is measured side by side (warm create-room), interleaved with this tree's")
	limits := flag.String("limits", "STUDENT_DAILY_SESSION_LIMIT=5,STUDENT_DAILY_MINUTES_LIMIT=120,MAX_OPEN_SESSIONS=100000",
		"cost-guard variables (comma-separated K=V) of a third variant, this tree with them set, interleaved too; empty skips it")
	flag.Parse()
	if err := run(*out, *colds, *warm, *baseline, *limits); err != nil {
		fmt.Fprintln(os.Stderr, "bench-lambda:", err)
		os.Exit(1)
	}
}

func run(out string, colds, warm int, baseline, limits string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	stack, err := localstack.Start(ctx, localstack.Options{})
	if err != nil {
		return err
	}
	defer stack.Stop()
	if err := stack.DynamoDB.CreateTables(ctx, "bench-sessions", "bench-categories"); err != nil {
		return err
	}
	list, err := seed.Load(filepath.Join(stack.Paths.Root, "infra", "seed", "categories.json"))
	if err != nil {
		return err
	}
	if err := seed.Seed(ctx, categories.NewDynamoStore(stack.DynamoDB.Client, "bench-categories"), list); err != nil {
		return err
	}
	pool, err := stack.Cognito.CreatePool(ctx, "bench")
	if err != nil {
		return err
	}
	ecs := ecsdouble.New()
	defer ecs.Close()

	dir, err := os.MkdirTemp("", "bench-lambda-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	hostBin, err := localstack.BuildBootstrap(stack.Paths, "api", "", filepath.Join(dir, "host"))
	if err != nil {
		return err
	}
	armBin, err := localstack.BuildBootstrap(stack.Paths, "api", "arm64", filepath.Join(dir, "arm64"))
	if err != nil {
		return err
	}
	// The emulator floor: a function that does nothing, under the same emulator, interleaved too.
	floorBin, err := localstack.BuildLambda(stack.Paths, "./infra/cmd/bench-lambda/floor", "", filepath.Join(dir, "floor"))
	if err != nil {
		return err
	}
	zipped, raw, err := zipSize(armBin)
	if err != nil {
		return err
	}
	var baseBin string
	if baseline != "" {
		src := filepath.Join(dir, "baseline-src")
		if err := extractRef(stack.Paths.Root, baseline, src); err != nil {
			return err
		}
		if baseBin, err = localstack.BuildBootstrap(localstack.Paths{Root: src, Cache: stack.Paths.Cache}, "api", "", filepath.Join(dir, "baseline")); err != nil {
			return err
		}
	}

	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + dir,
		"AWS_REGION=" + localstack.Region, "AWS_ACCESS_KEY_ID=local", "AWS_SECRET_ACCESS_KEY=local", "AWS_EC2_METADATA_DISABLED=true",
		"AWS_ENDPOINT_URL_DYNAMODB=" + stack.DynamoDB.Endpoint, "AWS_ENDPOINT_URL_ECS=" + ecs.URL,
		"LIVEKIT_URL=" + stack.LiveKit.URL, "LIVEKIT_PUBLIC_URL=" + stack.LiveKit.WSURL,
		"LIVEKIT_API_KEY=" + stack.LiveKit.APIKey, "LIVEKIT_API_SECRET=" + stack.LiveKit.APISecret,
		"SESSIONS_TABLE=bench-sessions", "CATEGORIES_TABLE=bench-categories",
		"COGNITO_ISSUER=" + pool.Issuer, "COGNITO_CLIENT_IDS=" + pool.ClientID,
		"AGENT_LAUNCHER=ecs", "ECS_CLUSTER=bench", "AGENT_TASK_DEFINITION=agent:1", "AGENT_CONTAINER_NAME=agent",
		"AGENT_SUBNETS=subnet-1", "AGENT_SECURITY_GROUPS=sg-1", "LOG_LEVEL=info",
	}
	cat := list[0].ID

	// Warm variants, each under its own emulator: this tree, the baseline, this tree with the cost
	// guards on (the template's defaults; a cap the run never reaches, so each call pays the counter).
	type variant struct {
		bin string
		env []string
	}
	variants := []variant{{hostBin, env}}
	if baseBin != "" {
		variants = append(variants, variant{baseBin, env})
	}
	if limits != "" {
		variants = append(variants, variant{hostBin, append(slices.Clone(env), strings.Split(limits, ",")...)})
	}
	variants = append(variants, variant{floorBin, env}) // always last

	// Students are made up front so sign-up time stays out of the measurements.
	tokens := make([]string, colds+len(variants)*(warm+1))
	for i := range tokens {
		name := fmt.Sprintf("bench-%d@example.edu", i)
		if _, err := stack.Cognito.CreateUser(ctx, pool, name, "Passw0rd!bench"); err != nil {
			return err
		}
		tok, err := stack.Cognito.Login(ctx, pool, name, "Passw0rd!bench")
		if err != nil {
			return err
		}
		tokens[i] = tok.ID
	}

	var inits, firsts []float64
	for i := 0; i < colds; i++ {
		fn, err := localstack.StartLambda(stack.Paths, hostBin, env)
		if err != nil {
			return err
		}
		start := time.Now()
		status, err := createRoom(fn, tokens[i], cat)
		first := time.Since(start)
		initMS, ierr := initDuration(fn)
		fn.Stop()
		if err != nil || status != 200 {
			return fmt.Errorf("cold invocation %d: status %d %v; output: %s", i, status, err, fn.Output())
		}
		if ierr != nil {
			return ierr
		}
		inits = append(inits, initMS)
		firsts = append(firsts, float64(first.Microseconds())/1000)
	}

	// Warm: one emulator per variant, invoked in turn (this tree, baseline, this tree, ...) so that
	// load from other processes on the machine hits all alike.
	fns := make([]*localstack.Lambda, len(variants))
	next := colds
	for i, v := range variants {
		if fns[i], err = localstack.StartLambda(stack.Paths, v.bin, v.env); err != nil {
			return err
		}
		defer fns[i].Stop()
		if _, err := createRoom(fns[i], tokens[next], cat); err != nil { // warm-up
			return err
		}
		next++
	}
	warms := make([][]float64, len(variants))
	for range warm - 1 {
		for i, fn := range fns {
			start := time.Now()
			status, err := createRoom(fn, tokens[next], cat)
			next++
			if err != nil || status != 200 {
				return fmt.Errorf("warm invocation: %d %v; output: %s", status, err, fn.Output())
			}
			warms[i] = append(warms[i], float64(time.Since(start).Microseconds())/1000)
		}
	}
	// Rows below the warm row, and the notes after the table.
	var rows, notes string
	floor := warms[len(warms)-1]
	warms = warms[:len(warms)-1]
	if baseBin != "" {
		b, c := warms[1], warms[0]
		rows += fmt.Sprintf("| warm create-room, baseline `%s`, interleaved with the row above (ms) | %d | %.1f | %.1f | %.1f |\n", baseline, len(b), pct(b, 50), pct(b, 95), pct(b, 100))
		notes += fmt.Sprintf("\nWarm create-room p50: baseline %.1f ms, this tree %.1f ms (%.0f%% of the baseline). The baseline\n", pct(b, 50), pct(c, 50), 100*pct(c, 50)/pct(b, 50)) +
			"is built from `git archive` of that ref (no worktree is created) and runs under its own emulator\n" +
			"against the same stack; the two are invoked alternately.\n"
	}
	if limits != "" {
		g, c := warms[len(warms)-1], warms[0]
		rows += fmt.Sprintf("| warm create-room, this tree with the cost guards on (`%s`), interleaved (ms) | %d | %.1f | %.1f | %.1f |\n",
			limits, len(g), pct(g, 50), pct(g, 95), pct(g, 100))
		notes += fmt.Sprintf("\nWith the cost guards on, create-room also reads the student's usage item before its transaction\n"+
			"(in parallel with LiveKit's CreateRoom) and writes the usage item and the open-session counter in it:\n"+
			"p50 %.1f ms against %.1f ms without (%.0f%%).\n", pct(g, 50), pct(c, 50), 100*pct(g, 50)/pct(c, 50))
	}

	rows += fmt.Sprintf("| emulator floor: a function that answers 200 and calls nothing, interleaved (ms) | %d | %.1f | %.1f | %.1f |\n",
		len(floor), pct(floor, 50), pct(floor, 95), pct(floor, 100))
	notes += fmt.Sprintf("\nThe emulator floor (`infra/cmd/bench-lambda/floor`, same runtime library, same event) is in every row above:\n"+
		"p50 %.1f ms of this tree's %.1f ms. Above the floor, this tree's create-room takes %.1f ms p50", pct(floor, 50), pct(warms[0], 50), pct(warms[0], 50)-pct(floor, 50))
	if baseBin != "" {
		b := warms[1]
		notes += fmt.Sprintf(", the baseline's %.1f ms (%.0f%%)", pct(b, 50)-pct(floor, 50), 100*(pct(warms[0], 50)-pct(floor, 50))/(pct(b, 50)-pct(floor, 50)))
	}
	notes += ".\n(Differences of p50s, an estimate: the distributions are not subtracted sample by sample.)\n"

	calls, err := roundTrips(ctx, stack, ecs.URL, cat, warm)
	if err != nil {
		return err
	}

	report := fmt.Sprintf(`# API Lambda measurements

Measured %s on %s (%d cores), %s, by `+"`go run ./infra/cmd/bench-lambda`"+` (part of `+"`make bench`"+`).
The real bootstrap (built as for Lambda, for this machine's architecture) runs under the Lambda Runtime
Interface Emulator against the local stack: livekit-server, DynamoDB Local and cognito-local on
loopback, ECS as a wire-level double. Each invocation is a full create-room for a new student
(JWT check, category, conditional transaction, CreateRoom, RunTask, update; this tree reads the
categories once a minute and writes the transaction while LiveKit creates the room).

| measure | n | p50 | p95 | max |
|---|---|---|---|---|
| cold start: init in main, config to handler ready (ms) | %d | %.1f | %.1f | %.1f |
| cold start: first create-room, end to end (ms) | %d | %.1f | %.1f | %.1f |
| warm create-room, end to end (ms) | %d | %.1f | %.1f | %.1f |
%s%s
%s
Deployment artifact (linux/arm64, `+"`-tags lambda.norpc -trimpath -ldflags \"-s -w\"`"+`): bootstrap %.1f MiB, zipped %.1f MiB.

Local emulators are slower than the managed services for some calls and faster for others (no
network hops); treat these as regression baselines, not production latencies.
`, time.Now().UTC().Format(time.RFC3339), cpuModel(), runtime.NumCPU(), runtime.Version(),
		len(inits), pct(inits, 50), pct(inits, 95), pct(inits, 100),
		len(firsts), pct(firsts, 50), pct(firsts, 95), pct(firsts, 100),
		len(warms[0]), pct(warms[0], 50), pct(warms[0], 95), pct(warms[0], 100), rows, notes, calls,
		float64(raw)/(1<<20), float64(zipped)/(1<<20))
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(out, []byte(report), 0o644); err != nil {
		return err
	}
	fmt.Print(report)
	return nil
}

// roundTrips measures, one after the other, each call of the warm create-room path on its own with
// the production clients, so the report shows what the dependent chain is made of.
func roundTrips(ctx context.Context, stack *localstack.Stack, ecsURL, categoryID string, n int) (string, error) {
	awsCfg := localstack.AWSConfig()
	cats := categories.NewDynamoStore(stack.DynamoDB.Client, "bench-categories")
	store := sessions.NewDynamoStore(stack.DynamoDB.Client, "bench-sessions")
	lk := rooms.NewClient(stack.LiveKit.URL, stack.LiveKit.APIKey, stack.LiveKit.APISecret)
	launcher := agents.NewECSLauncher(awsecs.NewFromConfig(awsCfg, func(o *awsecs.Options) { o.BaseEndpoint = &ecsURL }),
		config.ECS{Cluster: "bench", TaskDefinition: "agent:1", ContainerName: "agent", Subnets: []string{"subnet-1"}, SecurityGroups: []string{"sg-1"}})
	names := []string{"category GetItem", "session record TransactWriteItems", "LiveKit CreateRoom", "ECS RunTask", "MarkStarted UpdateItem"}
	took := make([][]float64, len(names))
	for i := range n {
		id := fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
		steps := []func() error{
			func() error { _, err := cats.GetEnabled(ctx, categoryID); return err },
			func() error {
				_, err := store.Create(ctx, sessions.Session{SessionID: id, UserID: "rt-" + id, Status: sessions.StatusStarting, CreatedAt: time.Now()}, sessions.Admission{LockTTL: time.Hour})
				return err
			},
			func() error {
				_, err := lk.CreateRoom(ctx, sessions.RoomName(id), rooms.Metadata{SessionID: id})
				return err
			},
			func() error {
				_, err := launcher.Launch(ctx, agents.Session{SessionID: id, RoomName: sessions.RoomName(id)})
				return err
			},
			func() error {
				return store.MarkStarted(ctx, id, sessions.Started{RoomSID: "RM_x", AgentTaskID: "task", AgentSource: "cold", At: time.Now()})
			},
		}
		for j, step := range steps {
			start := time.Now()
			if err := step(); err != nil {
				return "", fmt.Errorf("%s: %w", names[j], err)
			}
			took[j] = append(took[j], float64(time.Since(start).Microseconds())/1000)
		}
	}
	out := "\nEach round trip of the warm path alone (same clients, same stack, n = " + strconv.Itoa(n) + "): the baseline waits\n" +
		"for all five in turn; this tree for max(record, room), then RunTask, then MarkStarted.\n\n| call | p50 (ms) | p95 (ms) |\n|---|---|---|\n"
	for j, name := range names {
		out += fmt.Sprintf("| %s | %.1f | %.1f |\n", name, pct(took[j], 50), pct(took[j], 95))
	}
	return out, nil
}

// extractRef writes the tree of a git ref into dir (git archive: read-only on the repository).
func extractRef(root, ref, dir string) error {
	cmd := exec.Command("git", "archive", "--format=tar", ref)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("git archive %s: %w", ref, err)
	}
	tr := tar.NewReader(stdout)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("git archive %s: %w", ref, err)
		}
		target := filepath.Join(dir, filepath.FromSlash(h.Name))
		if !strings.HasPrefix(target, filepath.Clean(dir)+string(os.PathSeparator)) {
			return fmt.Errorf("git archive %s: unexpected path %q", ref, h.Name)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode)&0o755|0o600)
			if err != nil {
				return err
			}
			_, cerr := io.Copy(f, tr)
			if err := errors.Join(cerr, f.Close()); err != nil {
				return err
			}
		}
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("git archive %s: %w: %s", ref, err, stderr.String())
	}
	return nil
}

func zipSize(path string) (zipped, raw int64, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, err
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.CreateHeader(&zip.FileHeader{Name: "bootstrap", Method: zip.Deflate})
	if err != nil {
		return 0, 0, err
	}
	if _, err := w.Write(data); err != nil {
		return 0, 0, err
	}
	if err := zw.Close(); err != nil {
		return 0, 0, err
	}
	return int64(buf.Len()), int64(len(data)), nil
}

func createRoom(fn *localstack.Lambda, token, category string) (int, error) {
	ev := events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: "$default", RawPath: "/api/v1/video/create-room",
		Headers:        map[string]string{"authorization": "Bearer " + token, "content-type": "application/json"},
		Body:           `{"counselor_category":"` + category + `"}`,
		RequestContext: events.APIGatewayV2HTTPRequestContext{RequestID: "bench", HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "POST", Path: "/api/v1/video/create-room"}},
	}
	var res events.APIGatewayV2HTTPResponse
	err := fn.Invoke(ev, &res)
	return res.StatusCode, err
}

// initRe reads the API's own cold-start log line: this emulator version initializes asynchronously
// and reports an Init Duration of ~0, so the function measures its init itself (config, secret,
// AWS config, JWKS setup) and logs it.
var initRe = regexp.MustCompile(`"msg":"cold start complete","init_ms":([0-9.]+)`)

func initDuration(fn *localstack.Lambda) (float64, error) {
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := initRe.FindStringSubmatch(fn.Output()); m != nil {
			return strconv.ParseFloat(m[1], 64)
		}
	}
	return 0, fmt.Errorf("no cold start line in function output: %s", fn.Output())
}

func pct(xs []float64, p int) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	if i < 1 {
		i = 1
	}
	return s[i-1]
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "model name") {
			return strings.TrimSpace(strings.SplitN(line, ":", 2)[1])
		}
	}
	return runtime.GOARCH
}
