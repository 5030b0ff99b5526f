package app

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"counselvideo/shared/agents"
	"counselvideo/shared/config"
)

type nopLauncher struct{}

func (nopLauncher) Launch(context.Context, agents.Session) (string, error) { return "task", nil }
func (nopLauncher) Stop(context.Context, string, string) error             { return nil }

func poolConfig(name string) config.Config {
	var c config.Config
	c.LiveKit = config.LiveKit{URL: "http://127.0.0.1:1", APIKey: "k", APISecret: "s"}
	c.Agent = config.Agent{Launcher: config.LauncherProcess, PoolAgentName: name, PoolJoinTimeout: 4 * time.Second}
	return c
}

// TestNewServiceWiresThePoolOnlyWhenNamed: without AGENT_POOL_AGENT_NAME the service gets the cold
// launcher itself (today's behaviour); with it, a Pool around it and the wait in its deadline.
func TestNewServiceWiresThePoolOnlyWhenNamed(t *testing.T) {
	cold := nopLauncher{}
	svc, err := NewService(poolConfig(""), aws.Config{Region: "us-east-1"}, Deps{Launcher: cold})
	if err != nil {
		t.Fatal(err)
	}
	if svc.Agents != agents.Launcher(cold) || svc.PoolWait != 0 {
		t.Fatalf("pool off: launcher %T, wait %v; want the cold launcher as is", svc.Agents, svc.PoolWait)
	}
	svc, err = NewService(poolConfig("counselor"), aws.Config{Region: "us-east-1"}, Deps{Launcher: cold})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := svc.Agents.(*agents.Pool); !ok || agents.FirstSource(svc.Agents) != agents.SourcePool {
		t.Fatalf("pool on: launcher %T", svc.Agents)
	}
	if svc.PoolWait != 4*time.Second+agents.DispatchDeleteTimeout {
		t.Fatalf("pool wait %v", svc.PoolWait)
	}
}

// TestWebhookReplacesThroughThePool: the webhook's launcher (a lost agent's replacement) is the pool
// around the cold launcher when the pool is named, the cold launcher's path otherwise.
func TestWebhookReplacesThroughThePool(t *testing.T) {
	for name, want := range map[string]string{"counselor": agents.SourcePool, "": agents.SourceCold} {
		launcher, _, err := lifecycleDeps(poolConfig(name), aws.Config{Region: "us-east-1"}, Deps{Launcher: nopLauncher{}})
		if err != nil {
			t.Fatal(err)
		}
		if got := agents.FirstSource(launcher); got != want {
			t.Errorf("pool %q: the replacement's first source is %q, want %q", name, got, want)
		}
	}
}
