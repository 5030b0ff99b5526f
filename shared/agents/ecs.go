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
}

// ECSLauncher runs the agent as a Fargate task.
type ECSLauncher struct {
	client ECSAPI
	cfg    config.ECS
}

func NewECSLauncher(client ECSAPI, cfg config.ECS) *ECSLauncher {
	return &ECSLauncher{client: client, cfg: cfg}
}

const ecsCallTimeout = 10 * time.Second

func (l *ECSLauncher) Launch(ctx context.Context, s Session) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, ecsCallTimeout)
	defer cancel()
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
		// The session id makes RunTask idempotent: a retried launch returns the same task.
		ClientToken: aws.String(s.SessionID),
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
	out, err := l.client.RunTask(ctx, in)
	if err != nil {
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
	ctx, cancel := context.WithTimeout(ctx, ecsCallTimeout)
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

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
