package agents

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"counselvideo/shared/config"
)

// fakeECS records requests and answers with what the test set.
type fakeECS struct {
	runs    []*ecs.RunTaskInput
	stops   []*ecs.StopTaskInput
	lists   []*ecs.ListTasksInput
	runOut  *ecs.RunTaskOutput
	runErr  error
	stopErr error
	// listed is what ListTasks answers; listCtxErr records whether ListTasks saw a live context.
	listed     []string
	listCtxErr []error
}

func (f *fakeECS) RunTask(ctx context.Context, in *ecs.RunTaskInput, _ ...func(*ecs.Options)) (*ecs.RunTaskOutput, error) {
	if _, ok := ctx.Deadline(); !ok {
		return nil, errors.New("RunTask called without a deadline")
	}
	f.runs = append(f.runs, in)
	if f.runErr != nil {
		return nil, f.runErr
	}
	if f.runOut != nil {
		return f.runOut, nil
	}
	return &ecs.RunTaskOutput{Tasks: []types.Task{{TaskArn: aws.String("arn:aws:ecs:us-east-1:1:task/agents/" + aws.ToString(in.ClientToken))}}}, nil
}

func (f *fakeECS) StopTask(ctx context.Context, in *ecs.StopTaskInput, _ ...func(*ecs.Options)) (*ecs.StopTaskOutput, error) {
	if _, ok := ctx.Deadline(); !ok {
		return nil, errors.New("StopTask called without a deadline")
	}
	f.stops = append(f.stops, in)
	return &ecs.StopTaskOutput{}, f.stopErr
}

func (f *fakeECS) ListTasks(ctx context.Context, in *ecs.ListTasksInput, _ ...func(*ecs.Options)) (*ecs.ListTasksOutput, error) {
	if _, ok := ctx.Deadline(); !ok {
		return nil, errors.New("ListTasks called without a deadline")
	}
	f.lists = append(f.lists, in)
	f.listCtxErr = append(f.listCtxErr, ctx.Err())
	return &ecs.ListTasksOutput{TaskArns: f.listed}, nil
}

var ecsCfg = config.ECS{
	Cluster: "agents", TaskDefinition: "counsel-agent:7", ContainerName: "agent",
	Subnets: []string{"subnet-a", "subnet-b"}, SecurityGroups: []string{"sg-1"},
}

var sess = Session{SessionID: "3f2b8c1e-0000-4000-8000-000000000001", RoomName: "video-3f2b8c1e-0000-4000-8000-000000000001", CategoryID: "cat-1", MaxDuration: 25 * time.Minute}

func TestECSLaunchRunTaskInput(t *testing.T) {
	f := &fakeECS{}
	task, err := NewECSLauncher(f, ecsCfg).Launch(context.Background(), sess)
	if err != nil {
		t.Fatal(err)
	}
	if task != "arn:aws:ecs:us-east-1:1:task/agents/"+sess.SessionID {
		t.Errorf("task %q", task)
	}
	if len(f.runs) != 1 {
		t.Fatalf("%d RunTask calls", len(f.runs))
	}
	in := f.runs[0]
	if aws.ToString(in.Cluster) != "agents" || aws.ToString(in.TaskDefinition) != "counsel-agent:7" ||
		in.LaunchType != types.LaunchTypeFargate || aws.ToInt32(in.Count) != 1 {
		t.Errorf("cluster %q task def %q launch type %q count %v", aws.ToString(in.Cluster), aws.ToString(in.TaskDefinition), in.LaunchType, in.Count)
	}
	if aws.ToString(in.ClientToken) != sess.SessionID || aws.ToString(in.StartedBy) != sess.SessionID {
		t.Errorf("client token %q started by %q", aws.ToString(in.ClientToken), aws.ToString(in.StartedBy))
	}
	tags := map[string]string{}
	for _, tag := range in.Tags {
		tags[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
	}
	if len(in.Tags) != 2 || tags["session_id"] != sess.SessionID || tags["category_id"] != "cat-1" {
		t.Errorf("tags %v", tags)
	}
	if in.PropagateTags != types.PropagateTagsTaskDefinition {
		t.Errorf("propagate tags %q", in.PropagateTags)
	}
	if in.NetworkConfiguration == nil || in.NetworkConfiguration.AwsvpcConfiguration == nil {
		t.Fatal("no awsvpc configuration")
	}
	vpc := in.NetworkConfiguration.AwsvpcConfiguration
	if !slices.Equal(vpc.Subnets, ecsCfg.Subnets) || !slices.Equal(vpc.SecurityGroups, ecsCfg.SecurityGroups) || vpc.AssignPublicIp != types.AssignPublicIpDisabled {
		t.Errorf("awsvpc %+v", vpc)
	}
	if in.Overrides == nil || len(in.Overrides.ContainerOverrides) != 1 {
		t.Fatalf("overrides %+v", in.Overrides)
	}
	co := in.Overrides.ContainerOverrides[0]
	if aws.ToString(co.Name) != "agent" {
		t.Errorf("container %q", aws.ToString(co.Name))
	}
	env := map[string]string{}
	var names []string
	for _, kv := range co.Environment {
		env[aws.ToString(kv.Name)] = aws.ToString(kv.Value)
		names = append(names, aws.ToString(kv.Name))
	}
	want := map[string]string{"SESSION_ID": sess.SessionID, "ROOM_NAME": sess.RoomName, "CATEGORY_ID": "cat-1", "AGENT_MAX_DURATION_SECONDS": "1500", "AGENT_REPLACEMENT": "false"}
	if len(co.Environment) != len(want) || !maps.Equal(env, want) {
		t.Errorf("environment %v, want exactly %v", env, want)
	}
	if !slices.IsSorted(names) {
		t.Errorf("environment not in a stable order: %v", names)
	}
	// Nothing else is overridden (no command, secrets, CPU or role changes).
	if co.Command != nil || co.EnvironmentFiles != nil || co.Cpu != nil || co.Memory != nil ||
		in.Overrides.TaskRoleArn != nil || in.Overrides.ExecutionRoleArn != nil || in.Overrides.Cpu != nil {
		t.Errorf("unexpected overrides: %+v", in.Overrides)
	}

	// The same session launched again sends the same idempotency token.
	if _, err := NewECSLauncher(f, ecsCfg).Launch(context.Background(), sess); err != nil {
		t.Fatal(err)
	}
	if aws.ToString(f.runs[1].ClientToken) != sess.SessionID {
		t.Errorf("retry token %q", aws.ToString(f.runs[1].ClientToken))
	}
}

// TestECSLaunchReplacement: a replacement is not deduplicated into the lost agent's task (its own
// client token), stays findable by the session id (startedBy), and is told it is one.
func TestECSLaunchReplacement(t *testing.T) {
	f := &fakeECS{}
	l := NewECSLauncher(f, ecsCfg)
	first, err := l.Launch(context.Background(), sess)
	if err != nil {
		t.Fatal(err)
	}
	repl := sess
	repl.Replacement = true
	second, err := l.Launch(context.Background(), repl)
	if err != nil {
		t.Fatal(err)
	}
	if first == second {
		t.Fatalf("the replacement got the lost agent's task %q", second)
	}
	in := f.runs[1]
	if tok := aws.ToString(in.ClientToken); tok == sess.SessionID || len(tok) > 64 {
		t.Errorf("replacement client token %q", tok)
	}
	if aws.ToString(in.StartedBy) != sess.SessionID {
		t.Errorf("replacement started by %q, want the session id", aws.ToString(in.StartedBy))
	}
	var replacement string
	for _, kv := range in.Overrides.ContainerOverrides[0].Environment {
		if aws.ToString(kv.Name) == "AGENT_REPLACEMENT" {
			replacement = aws.ToString(kv.Value)
		}
	}
	if replacement != "true" {
		t.Errorf("AGENT_REPLACEMENT %q", replacement)
	}

	// A failed replacement launch cleans up by the session id.
	f.runErr = errors.New("boom")
	if _, err := l.Launch(context.Background(), repl); err == nil {
		t.Fatal("no error")
	}
	if n := len(f.lists); n != 1 || aws.ToString(f.lists[0].StartedBy) != sess.SessionID {
		t.Errorf("cleanup listed %d times, started by %v", n, f.lists)
	}
}

func TestECSLaunchPublicIP(t *testing.T) {
	f := &fakeECS{}
	cfg := ecsCfg
	cfg.AssignPublicIP = true
	if _, err := NewECSLauncher(f, cfg).Launch(context.Background(), sess); err != nil {
		t.Fatal(err)
	}
	if got := f.runs[0].NetworkConfiguration.AwsvpcConfiguration.AssignPublicIp; got != types.AssignPublicIpEnabled {
		t.Errorf("assign public ip %q", got)
	}
}

func TestECSLaunchCapacityProvider(t *testing.T) {
	f := &fakeECS{}
	cfg := ecsCfg
	cfg.CapacityProvider = "FARGATE_SPOT"
	if _, err := NewECSLauncher(f, cfg).Launch(context.Background(), sess); err != nil {
		t.Fatal(err)
	}
	in := f.runs[0]
	if in.LaunchType != "" || len(in.CapacityProviderStrategy) != 1 || aws.ToString(in.CapacityProviderStrategy[0].CapacityProvider) != "FARGATE_SPOT" {
		t.Fatalf("spot launch: launch type %q, strategy %+v", in.LaunchType, in.CapacityProviderStrategy)
	}
	f = &fakeECS{}
	cfg.CapacityProvider = "FARGATE"
	if _, err := NewECSLauncher(f, cfg).Launch(context.Background(), sess); err != nil {
		t.Fatal(err)
	}
	if f.runs[0].LaunchType != types.LaunchTypeFargate || len(f.runs[0].CapacityProviderStrategy) != 0 {
		t.Fatalf("regular launch: %q %+v", f.runs[0].LaunchType, f.runs[0].CapacityProviderStrategy)
	}
}

func TestECSLaunchFailures(t *testing.T) {
	for name, f := range map[string]*fakeECS{
		"failures without an error": {runOut: &ecs.RunTaskOutput{Failures: []types.Failure{
			{Reason: aws.String("RESOURCE:ENI"), Detail: aws.String("no capacity")},
		}}},
		"failures beside a task": {runOut: &ecs.RunTaskOutput{
			Tasks:    []types.Task{{TaskArn: aws.String("arn:task")}},
			Failures: []types.Failure{{Reason: aws.String("RESOURCE:ENI")}},
		}},
		"no task":          {runOut: &ecs.RunTaskOutput{}},
		"task without arn": {runOut: &ecs.RunTaskOutput{Tasks: []types.Task{{}}}},
		"api error":        {runErr: &types.ServerException{Message: aws.String("boom")}},
	} {
		task, err := NewECSLauncher(f, ecsCfg).Launch(context.Background(), sess)
		if err == nil || task != "" {
			t.Errorf("%s: task %q err %v", name, task, err)
			continue
		}
		if strings.HasPrefix(name, "failures") && !strings.Contains(err.Error(), "RESOURCE:ENI") {
			t.Errorf("%s: reason not reported: %v", name, err)
		}
		var se *types.ServerException
		if name == "api error" && !errors.As(err, &se) {
			t.Errorf("%s: cause not wrapped: %v", name, err)
		}
	}
}

func TestECSStop(t *testing.T) {
	f := &fakeECS{}
	l := NewECSLauncher(f, ecsCfg)
	long := strings.Repeat("r", 300)
	if err := l.Stop(context.Background(), "arn:task/1", long); err != nil {
		t.Fatal(err)
	}
	in := f.stops[0]
	if aws.ToString(in.Cluster) != "agents" || aws.ToString(in.Task) != "arn:task/1" || len(aws.ToString(in.Reason)) != 255 {
		t.Errorf("stop input cluster %q task %q reason length %d", aws.ToString(in.Cluster), aws.ToString(in.Task), len(aws.ToString(in.Reason)))
	}
	if err := l.Stop(context.Background(), "", "x"); err != nil || len(f.stops) != 1 {
		t.Errorf("empty task id: %v, %d calls", err, len(f.stops))
	}

	f.stopErr = &types.InvalidParameterException{Message: aws.String("The referenced task was not found.")}
	if err := l.Stop(context.Background(), "arn:task/gone", "x"); err != nil {
		t.Errorf("task already gone: %v", err)
	}
	f.stopErr = &types.InvalidParameterException{Message: aws.String("Invalid cluster name")}
	if err := l.Stop(context.Background(), "arn:task/1", "x"); err == nil {
		t.Error("other InvalidParameterException swallowed")
	}
	f.stopErr = &types.ClusterNotFoundException{Message: aws.String("Cluster not found.")}
	if err := l.Stop(context.Background(), "arn:task/1", "x"); err == nil {
		t.Error("ClusterNotFoundException swallowed")
	}
}

// TestECSLaunchTimeoutStopsStartedTask: RunTask gives up (our deadline) although ECS started the task;
// Launch finds it by startedBy with a fresh deadline and stops it. Failures that ECS reports itself
// (Failures, no task) started nothing and list nothing.
func TestECSLaunchTimeoutStopsStartedTask(t *testing.T) {
	f := &fakeECS{runErr: context.DeadlineExceeded, listed: []string{"arn:task/orphan"}}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the caller's context is done too: the cleanup must not depend on it
	_, err := NewECSLauncher(f, ecsCfg).Launch(ctx, sess)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Launch error %v", err)
	}
	if len(f.lists) != 1 || aws.ToString(f.lists[0].StartedBy) != sess.SessionID || aws.ToString(f.lists[0].Cluster) != "agents" {
		t.Fatalf("ListTasks calls %+v", f.lists)
	}
	if f.listCtxErr[0] != nil {
		t.Errorf("ListTasks ran on a done context: %v", f.listCtxErr[0])
	}
	if len(f.stops) != 1 || aws.ToString(f.stops[0].Task) != "arn:task/orphan" || !strings.Contains(aws.ToString(f.stops[0].Reason), sess.SessionID) {
		t.Fatalf("StopTask calls %+v", f.stops)
	}

	capacity := &fakeECS{runOut: &ecs.RunTaskOutput{Failures: []types.Failure{{Reason: aws.String("RESOURCE:CPU")}}}}
	if _, err := NewECSLauncher(capacity, ecsCfg).Launch(context.Background(), sess); err == nil || len(capacity.lists) != 0 {
		t.Errorf("a reported failure: err %v, %d ListTasks calls", err, len(capacity.lists))
	}
}

// TestECSLaunchNotConfigured: a launcher built without a task definition (a function that only stops
// tasks) refuses to launch without calling ECS.
func TestECSLaunchNotConfigured(t *testing.T) {
	f := &fakeECS{}
	cfg := ecsCfg
	cfg.TaskDefinition = ""
	if _, err := NewECSLauncher(f, cfg).Launch(context.Background(), sess); !errors.Is(err, ErrLaunchNotConfigured) {
		t.Fatalf("launch: %v", err)
	}
	if len(f.runs)+len(f.lists) != 0 {
		t.Errorf("ECS called: %d runs %d lists", len(f.runs), len(f.lists))
	}
}
