package ecsdouble

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"counselvideo/shared/agents"
	"counselvideo/shared/config"
)

// client is a real SDK client pointed at the double, without retries so each call is one request.
func client(s *Server) *ecs.Client {
	return ecs.New(ecs.Options{
		Region:           "us-east-1",
		BaseEndpoint:     aws.String(s.URL),
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDLOCAL", "local-secret", ""),
		RetryMaxAttempts: 1,
	})
}

var cfg = config.ECS{Cluster: "agents", TaskDefinition: "agent:1", ContainerName: "agent",
	Subnets: []string{"subnet-1"}, SecurityGroups: []string{"sg-1"}}

func session(id string) agents.Session {
	return agents.Session{SessionID: id, RoomName: "video-" + id, CategoryID: "cat-1", MaxDuration: time.Hour}
}

func TestLauncherOverTheWire(t *testing.T) {
	s := New()
	defer s.Close()
	l := agents.NewECSLauncher(client(s), cfg)
	ctx := context.Background()

	a, err := l.Launch(ctx, session("s-1"))
	if err != nil {
		t.Fatal(err)
	}
	again, err := l.Launch(ctx, session("s-1"))
	if err != nil || again != a {
		t.Errorf("same client token: %q then %q (%v)", a, again, err)
	}
	b, err := l.Launch(ctx, session("s-2"))
	if err != nil || b == a {
		t.Errorf("second session got %q (%v), first %q", b, err, a)
	}
	if !strings.HasPrefix(a, "arn:aws:ecs:us-east-1:000000000000:task/agents/") {
		t.Errorf("task arn %q", a)
	}
	runs := s.RunTasks()
	if len(runs) != 3 {
		t.Fatalf("%d RunTask requests recorded", len(runs))
	}
	// The recorded input is what the SDK serialized, decoded again.
	in := runs[0]
	if aws.ToString(in.ClientToken) != "s-1" || aws.ToString(in.Cluster) != "agents" || in.LaunchType != types.LaunchTypeFargate ||
		in.NetworkConfiguration == nil || in.NetworkConfiguration.AwsvpcConfiguration.AssignPublicIp != types.AssignPublicIpDisabled {
		t.Errorf("recorded input %+v", in)
	}
	env := map[string]string{}
	for _, kv := range in.Overrides.ContainerOverrides[0].Environment {
		env[aws.ToString(kv.Name)] = aws.ToString(kv.Value)
	}
	if len(env) != 5 || env["SESSION_ID"] != "s-1" || env["ROOM_NAME"] != "video-s-1" || env["CATEGORY_ID"] != "cat-1" || env["AGENT_MAX_DURATION_SECONDS"] != "3600" || env["AGENT_REPLACEMENT"] != "false" {
		t.Errorf("environment %v", env)
	}

	if err := l.Stop(ctx, a, "done"); err != nil {
		t.Fatal(err)
	}
	stops := s.StopTasks()
	if len(stops) != 1 || aws.ToString(stops[0].Task) != a || aws.ToString(stops[0].Reason) != "done" || aws.ToString(stops[0].Cluster) != "agents" {
		t.Errorf("stops %+v", stops)
	}

	// Returned slices are copies.
	runs[0].ClientToken = aws.String("changed")
	if aws.ToString(s.RunTasks()[0].ClientToken) != "s-1" {
		t.Error("RunTasks exposes the double's own slice")
	}

	s.Reset()
	if len(s.RunTasks())+len(s.StopTasks()) != 0 {
		t.Error("Reset kept calls")
	}
}

func TestFailRunTask(t *testing.T) {
	s := New()
	defer s.Close()
	l := agents.NewECSLauncher(client(s), cfg)
	ctx := context.Background()

	s.FailRunTask("failure")
	_, err := l.Launch(ctx, session("s-1"))
	if err == nil || !strings.Contains(err.Error(), "RESOURCE:CAPACITY") {
		t.Errorf("failure mode: %v", err)
	}
	s.FailRunTask("error")
	_, err = l.Launch(ctx, session("s-1"))
	var se *types.ServerException
	if !errors.As(err, &se) {
		t.Errorf("error mode: %v", err)
	}
	if n := len(s.RunTasks()); n != 2 {
		t.Errorf("%d failed requests recorded, want 2", n)
	}
	s.FailRunTask("")
	if _, err := l.Launch(ctx, session("s-1")); err != nil {
		t.Errorf("after restoring: %v", err)
	}
	s.FailRunTask("error")
	s.Reset()
	if _, err := l.Launch(ctx, session("s-2")); err != nil {
		t.Errorf("Reset kept the failure mode: %v", err)
	}
}

func TestRejectsNonECSRequests(t *testing.T) {
	s := New()
	defer s.Close()
	for name, hdr := range map[string]map[string]string{
		"no target":  {"Content-Type": "application/x-amz-json-1.1", "Authorization": "AWS4-HMAC-SHA256 x"},
		"wrong type": {"X-Amz-Target": targetPrefix + "RunTask", "Content-Type": "application/json", "Authorization": "AWS4-HMAC-SHA256 x"},
		"unsigned":   {"X-Amz-Target": targetPrefix + "RunTask", "Content-Type": "application/x-amz-json-1.1"},
		"unknown op": {"X-Amz-Target": targetPrefix + "DeleteCluster", "Content-Type": "application/x-amz-json-1.1", "Authorization": "AWS4-HMAC-SHA256 x"},
	} {
		req, _ := http.NewRequest(http.MethodPost, s.URL, strings.NewReader("{}"))
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("X-Amzn-ErrorType") != "InvalidParameterException" {
			t.Errorf("%s: %d %q", name, resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"))
		}
	}
	if len(s.RunTasks()) != 0 {
		t.Error("rejected requests recorded")
	}
}

// TestRunTaskTimeoutOverTheWire: ECS starts the task but answers after the launcher's deadline; the
// launcher finds it with ListTasks(startedBy) and stops it, so nothing runs for the failed launch.
func TestRunTaskTimeoutOverTheWire(t *testing.T) {
	s := New()
	defer s.Close()
	l := agents.NewECSLauncher(client(s), cfg)
	s.DelayRunTask(agents.RunTaskTimeout + 5*time.Second)
	defer s.DelayRunTask(0)

	if _, err := l.Launch(context.Background(), session("s-slow")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Launch: %v, want the deadline", err)
	}
	if len(s.RunTasks()) != 1 {
		t.Fatalf("%d RunTask requests", len(s.RunTasks()))
	}
	if running := s.Running("s-slow"); len(running) != 0 {
		t.Fatalf("still running after the failed launch: %v", running)
	}
	stops := s.StopTasks()
	if len(stops) != 1 || !strings.Contains(aws.ToString(stops[0].Reason), "s-slow") {
		t.Fatalf("stops %+v", stops)
	}
}

// TestListTasksAndHold: ListTasks filters by cluster, startedBy and desired status as ECS does; a held
// RunTask has started its task before it answers.
func TestListTasksAndHold(t *testing.T) {
	s := New()
	defer s.Close()
	c := client(s)
	l := agents.NewECSLauncher(c, cfg)
	ctx := context.Background()
	release := s.HoldRunTask()
	done := make(chan string)
	go func() {
		arn, _ := l.Launch(ctx, session("s-held"))
		done <- arn
	}()
	for deadline := time.Now().Add(10 * time.Second); len(s.Running("s-held")) == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("held RunTask never started its task")
		}
	}
	select {
	case <-done:
		t.Fatal("held RunTask answered before release")
	default:
	}
	release()
	arn := <-done
	if arn == "" || s.Running("s-held")[0] != arn {
		t.Fatalf("launch %q, running %v", arn, s.Running("s-held"))
	}
	other, err := l.Launch(ctx, session("s-other"))
	if err != nil {
		t.Fatal(err)
	}
	list := func(in *ecs.ListTasksInput) []string {
		out, err := c.ListTasks(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		return out.TaskArns
	}
	if got := list(&ecs.ListTasksInput{Cluster: aws.String("agents"), StartedBy: aws.String("s-held")}); len(got) != 1 || got[0] != arn {
		t.Errorf("by startedBy: %v", got)
	}
	if got := list(&ecs.ListTasksInput{Cluster: aws.String("agents")}); len(got) != 2 {
		t.Errorf("whole cluster: %v", got)
	}
	if got := list(&ecs.ListTasksInput{Cluster: aws.String("elsewhere")}); len(got) != 0 {
		t.Errorf("other cluster: %v", got)
	}
	if err := l.Stop(ctx, other, "done"); err != nil {
		t.Fatal(err)
	}
	if got := list(&ecs.ListTasksInput{Cluster: aws.String("agents"), StartedBy: aws.String("s-other")}); len(got) != 0 {
		t.Errorf("stopped task still listed as running: %v", got)
	}
	if got := list(&ecs.ListTasksInput{Cluster: aws.String("agents"), DesiredStatus: types.DesiredStatusStopped}); len(got) != 1 || got[0] != other {
		t.Errorf("stopped tasks: %v", got)
	}
}
