package agents

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"counselvideo/shared/config"
)

// ECSAPI is the part of the ECS client the launcher uses.
type ECSAPI interface {
	RunTask(context.Context, *ecs.RunTaskInput, ...func(*ecs.Options)) (*ecs.RunTaskOutput, error)
	StopTask(context.Context, *ecs.StopTaskInput, ...func(*ecs.Options)) (*ecs.StopTaskOutput, error)
	ListTasks(context.Context, *ecs.ListTasksInput, ...func(*ecs.Options)) (*ecs.ListTasksOutput, error)
}

// ECSLauncher runs the agent as a Fargate task.
type ECSLauncher struct {
	client ECSAPI
	cfg    config.ECS
}

func NewECSLauncher(client ECSAPI, cfg config.ECS) *ECSLauncher {
	return &ECSLauncher{client: client, cfg: cfg}
}

// ErrLaunchNotConfigured: the launcher was built to stop tasks only (a function without
// AGENT_TASK_DEFINITION).
var ErrLaunchNotConfigured = errors.New("ecs launcher: no task definition configured (AGENT_TASK_DEFINITION); it can only stop tasks")

// Deadlines of the ECS calls. The API's time budget (shared/service) counts RunTaskTimeout and
// LaunchCleanupTimeout; a caller's shorter deadline wins.
const (
	RunTaskTimeout = 4 * time.Second
	// LaunchCleanupTimeout bounds finding and stopping the task a failed RunTask may have started.
	LaunchCleanupTimeout = 2 * time.Second
	stopTimeout          = 5 * time.Second
)

// Launch runs the session's task. When RunTask fails, ECS may still have started it (our deadline
// passed, the answer was lost): Launch then finds it by startedBy (the session id) and stops it, so a
// failed launch leaves no agent behind.
func (l *ECSLauncher) Launch(ctx context.Context, s Session) (string, error) {
	if l.cfg.TaskDefinition == "" {
		return "", ErrLaunchNotConfigured
	}
	env := s.Env()
	names := make([]string, 0, len(env))
	for k := range env {
		names = append(names, k)
	}
	sort.Strings(names)
	overrides := make([]types.KeyValuePair, 0, len(env))
	for _, k := range names {
		overrides = append(overrides, types.KeyValuePair{Name: aws.String(k), Value: aws.String(env[k])})
	}
	publicIP := types.AssignPublicIpDisabled
	if l.cfg.AssignPublicIP {
		publicIP = types.AssignPublicIpEnabled
	}
	in := &ecs.RunTaskInput{
		Cluster:        aws.String(l.cfg.Cluster),
		TaskDefinition: aws.String(l.cfg.TaskDefinition),
		Count:          aws.Int32(1),
		// The launch key makes RunTask idempotent: a retried launch returns the same task, and a
		// replacement gets a task of its own. startedBy stays the session id, so the cleanup below
		// (and anyone listing a session's tasks) finds the replacement too.
		ClientToken: aws.String(s.LaunchKey()),
		StartedBy:   aws.String(s.SessionID),
		Tags: []types.Tag{
			{Key: aws.String("session_id"), Value: aws.String(s.SessionID)},
			{Key: aws.String("category_id"), Value: aws.String(s.CategoryID)},
		},
		PropagateTags: types.PropagateTagsTaskDefinition,
		NetworkConfiguration: &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{
			Subnets:        l.cfg.Subnets,
			SecurityGroups: l.cfg.SecurityGroups,
			AssignPublicIp: publicIP,
		}},
		Overrides: &types.TaskOverride{ContainerOverrides: []types.ContainerOverride{{
			Name:        aws.String(l.cfg.ContainerName),
			Environment: overrides,
		}}},
	}
	// A capacity provider strategy and a launch type exclude each other in RunTask.
	if l.cfg.CapacityProvider == "FARGATE_SPOT" {
		in.CapacityProviderStrategy = []types.CapacityProviderStrategyItem{{CapacityProvider: aws.String("FARGATE_SPOT"), Weight: 1}}
	} else {
		in.LaunchType = types.LaunchTypeFargate
	}
	runCtx, cancel := context.WithTimeout(ctx, RunTaskTimeout)
	out, err := l.client.RunTask(runCtx, in)
	cancel()
	if err != nil {
		if serr := l.stopStartedBy(ctx, s.SessionID, "agent launch failed"); serr != nil {
			return "", fmt.Errorf("ecs run task: %w (stopping a task it may have started: %v)", err, serr)
		}
		return "", fmt.Errorf("ecs run task: %w", err)
	}
	// RunTask reports capacity and placement problems in Failures with no error.
	if len(out.Failures) > 0 {
		var reasons []string
		for _, f := range out.Failures {
			reasons = append(reasons, aws.ToString(f.Reason)+" "+aws.ToString(f.Detail))
		}
		return "", fmt.Errorf("ecs run task failures: %s", strings.Join(reasons, "; "))
	}
	if len(out.Tasks) == 0 || aws.ToString(out.Tasks[0].TaskArn) == "" {
		return "", errors.New("ecs run task: no task returned")
	}
	return aws.ToString(out.Tasks[0].TaskArn), nil
}

func (l *ECSLauncher) Stop(ctx context.Context, taskID, reason string) error {
	if taskID == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, stopTimeout)
	defer cancel()
	_, err := l.client.StopTask(ctx, &ecs.StopTaskInput{
		Cluster: aws.String(l.cfg.Cluster), Task: aws.String(taskID), Reason: aws.String(truncate(reason, 255)),
	})
	var inv *types.InvalidParameterException
	if errors.As(err, &inv) && strings.Contains(strings.ToLower(inv.ErrorMessage()), "not found") {
		return nil // the task is already gone
	}
	if err != nil {
		return fmt.Errorf("ecs stop task: %w", err)
	}
	return nil
}

// stopStartedBy stops the cluster's running tasks started for a session. It has its own deadline:
// the caller's may be what just passed.
func (l *ECSLauncher) stopStartedBy(ctx context.Context, sessionID, reason string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), LaunchCleanupTimeout)
	defer cancel()
	out, err := l.client.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String(l.cfg.Cluster), StartedBy: aws.String(sessionID)})
	if err != nil {
		return fmt.Errorf("ecs list tasks: %w", err)
	}
	var errs []error
	for _, arn := range out.TaskArns {
		errs = append(errs, l.Stop(ctx, arn, "session "+sessionID+": "+reason))
	}
	return errors.Join(errs...)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
