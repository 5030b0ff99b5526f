// Package config is the environment contract of the Go binaries. Every variable is read and
// validated here, once per cold start; Load reports every missing or invalid variable in one error.
package config

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Function names a binary; each needs a different subset of the contract.
type Function string

const (
	API     Function = "api"
	Webhook Function = "webhook"
	Sweeper Function = "sweeper"
)

// Launcher kinds for AGENT_LAUNCHER.
const (
	LauncherECS     = "ecs"
	LauncherProcess = "process"
)

// Token uses accepted by COGNITO_TOKEN_USE.
const (
	TokenUseID     = "id"
	TokenUseAccess = "access"
	TokenUseAny    = "any"
)

type Config struct {
	LiveKit         LiveKit
	SessionsTable   string
	CategoriesTable string
	Cognito         Cognito
	Agent           Agent
	// StudentTokenTTL bounds how long a create-room token can be used to join.
	StudentTokenTTL time.Duration
	// SessionMaxDuration ends sessions that run too long (sweeper) and bounds the active-session lock.
	SessionMaxDuration time.Duration
	// AgentJoinTimeout fails sessions whose agent never joined (sweeper).
	AgentJoinTimeout time.Duration
	// SafetyGrace is how much longer than SessionMaxDuration a session flagged for a safety concern
	// may run (sweeper; the API's active-session lock covers it). The agent's AGENT_SAFETY_GRACE_SECONDS
	// must not exceed it.
	SafetyGrace time.Duration
	// Limits are create-room's cost guards (API).
	Limits             Limits
	CORSAllowedOrigins []string
	LogLevel           string
	// StackName is the deployment's name: the Stack dimension of every metric (shared/metrics).
	StackName string
}

// Limits are the cost guards create-room enforces; 0 means unlimited.
type Limits struct {
	// StudentDailySessions and StudentDailyMinutes bound a student's sessions and session minutes
	// per rolling day (STUDENT_DAILY_SESSION_LIMIT, STUDENT_DAILY_MINUTES_LIMIT).
	StudentDailySessions int
	StudentDailyMinutes  int
	// MaxOpenSessions bounds the open sessions of all students together (MAX_OPEN_SESSIONS).
	MaxOpenSessions int
}

type LiveKit struct {
	URL       string // server API (https:// or http://)
	PublicURL string // what browsers connect to (wss:// or ws://)
	APIKey    string
	// APISecret is filled either directly or, when APISecretARN is set, by the caller from Secrets Manager.
	APISecret    string
	APISecretARN string
}

type Cognito struct {
	Issuer    string
	ClientIDs []string
	TokenUse  string
}

type Agent struct {
	Launcher string
	ECS      ECS
	// Command is the local process launcher's argv (AGENT_COMMAND, split on spaces).
	Command []string
	// PoolAgentName turns the warm pool on (API): create-room dispatches this agent name and falls
	// back to the launcher above when no worker's agent joins within PoolJoinTimeout. Empty: off.
	PoolAgentName   string
	PoolJoinTimeout time.Duration
}

type ECS struct {
	Cluster        string
	TaskDefinition string
	ContainerName  string
	Subnets        []string
	SecurityGroups []string
	AssignPublicIP bool
	// CapacityProvider is FARGATE (regular, the default) or FARGATE_SPOT (cheaper; a reclaimed task
	// ends its session).
	CapacityProvider string
}

// Defaults for optional variables.
const (
	// DefaultStudentTokenTTL only needs to cover the join: LiveKit keeps a connected participant
	// connected past it and hands the client refreshed tokens for reconnects (README).
	DefaultStudentTokenTTL    = 2 * time.Minute
	DefaultSessionMaxDuration = 60 * time.Minute
	DefaultAgentJoinTimeout   = 3 * time.Minute
	DefaultSafetyGrace        = 15 * time.Minute
	// DefaultStackName is the Stack dimension outside a deployment (make dev, tests). The template
	// sets STACK_NAME to the stack's name (the template check holds it, like the alarms' dimension).
	DefaultStackName = "local"
)

// agentNamePattern is the pool worker's rule for LIVEKIT_AGENT_NAME (agentimage/src/config.ts).
var agentNamePattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// Bounds of AGENT_POOL_JOIN_TIMEOUT_SECONDS: a worker's agent joins ~0.3 s after the dispatch; the
// longest wait is counted in the API's time budget (service.MaxPoolWait).
const (
	DefaultPoolJoinTimeout = 3 * time.Second
	MaxPoolJoinTimeout     = 5 * time.Second
)

// stackNamePattern is CloudFormation's stack name rule (also a valid metric dimension value).
var stackNamePattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]{0,127}$`)

// maxSeconds bounds every duration variable (one week), far from time.Duration overflow.
const maxSeconds = 7 * 24 * 3600

// Bounds of the limits. A student's usage item holds one entry per session of the day, so the
// session limit stays far below DynamoDB's item size; a day has 1,440 minutes.
const (
	MaxStudentDailySessions = 1000
	MaxStudentDailyMinutes  = 24 * 60
	MaxOpenSessionsLimit    = 100000
)

// Load reads the variables fn needs through getenv (os.Getenv in production).
func Load(fn Function, getenv func(string) string) (Config, error) {
	r := reader{getenv: getenv}
	var c Config

	c.LiveKit.URL = r.url("LIVEKIT_URL", "http", "https", "ws", "wss")
	c.LiveKit.APIKey = r.required("LIVEKIT_API_KEY")
	c.LiveKit.APISecret = strings.TrimSpace(getenv("LIVEKIT_API_SECRET"))
	c.LiveKit.APISecretARN = strings.TrimSpace(getenv("LIVEKIT_API_SECRET_ARN"))
	if c.LiveKit.APISecret == "" && c.LiveKit.APISecretARN == "" {
		r.problem("LIVEKIT_API_SECRET or LIVEKIT_API_SECRET_ARN is required")
	}
	c.SessionsTable = r.required("SESSIONS_TABLE")
	c.LogLevel = r.oneOf("LOG_LEVEL", "info", "debug", "info", "warn", "error")
	c.StackName = r.stackName()
	c.SessionMaxDuration = r.seconds("SESSION_MAX_DURATION_SECONDS", DefaultSessionMaxDuration)
	c.Agent.Launcher = r.oneOf("AGENT_LAUNCHER", "", LauncherECS, LauncherProcess)
	if c.Agent.Launcher == "" {
		r.problem("AGENT_LAUNCHER is required (ecs or process)")
	}

	switch fn {
	case API:
		c.LiveKit.PublicURL = r.url("LIVEKIT_PUBLIC_URL", "ws", "wss")
		c.CategoriesTable = r.required("CATEGORIES_TABLE")
		c.Cognito = r.cognito()
		c.StudentTokenTTL = r.seconds("STUDENT_TOKEN_TTL_SECONDS", DefaultStudentTokenTTL)
		c.CORSAllowedOrigins = r.list("CORS_ALLOWED_ORIGINS")
		c.SafetyGrace = r.seconds("SESSION_SAFETY_GRACE_SECONDS", DefaultSafetyGrace)
		c.Limits = Limits{
			StudentDailySessions: r.count("STUDENT_DAILY_SESSION_LIMIT", MaxStudentDailySessions),
			StudentDailyMinutes:  r.count("STUDENT_DAILY_MINUTES_LIMIT", MaxStudentDailyMinutes),
			MaxOpenSessions:      r.count("MAX_OPEN_SESSIONS", MaxOpenSessionsLimit),
		}
		c.Agent.PoolAgentName, c.Agent.PoolJoinTimeout = r.pool()
		switch c.Agent.Launcher {
		case LauncherECS:
			c.Agent.ECS = r.ecs()
		case LauncherProcess:
			c.Agent.Command = strings.Fields(getenv("AGENT_COMMAND"))
			if len(c.Agent.Command) == 0 {
				r.problem("AGENT_COMMAND is required when AGENT_LAUNCHER=process")
			}
		}
	case Webhook, Sweeper:
		if fn == Webhook { // a lost agent's replacement is dispatched to the pool first, as create-room does
			c.Agent.PoolAgentName, c.Agent.PoolJoinTimeout = r.pool()
		}
		switch {
		case c.Agent.Launcher != LauncherECS:
		case fn == Webhook && strings.TrimSpace(getenv("AGENT_TASK_DEFINITION")) != "":
			// The webhook launches the replacement of an agent lost mid-session: with the task
			// definition set, the rest of the API's launch settings are required too. Without it, it
			// can only stop tasks, and a lost agent fails its session.
			c.Agent.ECS = r.ecs()
		default:
			c.Agent.ECS.Cluster = r.required("ECS_CLUSTER")
		}
		c.AgentJoinTimeout = r.seconds("AGENT_JOIN_TIMEOUT_SECONDS", DefaultAgentJoinTimeout)
		if fn == Sweeper {
			c.SafetyGrace = r.seconds("SESSION_SAFETY_GRACE_SECONDS", DefaultSafetyGrace)
		}
	default:
		r.problem(fmt.Sprintf("unknown function %q", fn))
	}

	if len(r.problems) > 0 {
		return Config{}, fmt.Errorf("invalid configuration: %s", strings.Join(r.problems, "; "))
	}
	return c, nil
}

// RequiredVars lists, for the deployment check, the variables a function must have set when it runs
// with the ECS launcher (the deployed shape). Each entry lists alternatives: any one satisfies it.
func RequiredVars(fn Function) [][]string {
	common := [][]string{
		{"LIVEKIT_URL"}, {"LIVEKIT_API_KEY"}, {"LIVEKIT_API_SECRET", "LIVEKIT_API_SECRET_ARN"},
		{"SESSIONS_TABLE"}, {"AGENT_LAUNCHER"},
	}
	switch fn {
	case API:
		return append(common,
			[]string{"LIVEKIT_PUBLIC_URL"}, []string{"CATEGORIES_TABLE"},
			[]string{"COGNITO_ISSUER", "COGNITO_USER_POOL_ID"}, []string{"COGNITO_CLIENT_IDS"},
			[]string{"ECS_CLUSTER"}, []string{"AGENT_TASK_DEFINITION"}, []string{"AGENT_CONTAINER_NAME"},
			[]string{"AGENT_SUBNETS"}, []string{"AGENT_SECURITY_GROUPS"})
	case Webhook, Sweeper:
		return append(common, []string{"ECS_CLUSTER"})
	}
	return nil
}

type reader struct {
	getenv   func(string) string
	problems []string
}

func (r *reader) problem(msg string) { r.problems = append(r.problems, msg) }

func (r *reader) required(name string) string {
	v := strings.TrimSpace(r.getenv(name))
	if v == "" {
		r.problem(name + " is required")
	}
	return v
}

func (r *reader) url(name string, schemes ...string) string {
	v := r.required(name)
	if v == "" {
		return ""
	}
	u, err := url.Parse(v)
	if err != nil || u.Host == "" || !slices.Contains(schemes, u.Scheme) {
		r.problem(fmt.Sprintf("%s must be a URL with scheme %s", name, strings.Join(schemes, ", ")))
		return ""
	}
	return strings.TrimRight(v, "/")
}

func (r *reader) stackName() string {
	v := strings.TrimSpace(r.getenv("STACK_NAME"))
	if v == "" {
		return DefaultStackName
	}
	if !stackNamePattern.MatchString(v) {
		r.problem("STACK_NAME must be a CloudFormation stack name (a letter, then letters, digits and hyphens; at most 128)")
	}
	return v
}

func (r *reader) oneOf(name, def string, allowed ...string) string {
	v := strings.ToLower(strings.TrimSpace(r.getenv(name)))
	if v == "" {
		return def
	}
	if !slices.Contains(allowed, v) {
		r.problem(fmt.Sprintf("%s must be one of %s", name, strings.Join(allowed, ", ")))
	}
	return v
}

func (r *reader) seconds(name string, def time.Duration) time.Duration {
	v := strings.TrimSpace(r.getenv(name))
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 || n > maxSeconds {
		r.problem(fmt.Sprintf("%s must be a whole number of seconds between 1 and %d", name, maxSeconds))
		return def
	}
	return time.Duration(n) * time.Second
}

// count reads a whole number from 0 (also when unset: unlimited) to max.
func (r *reader) count(name string, max int) int {
	v := strings.TrimSpace(r.getenv(name))
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > max {
		r.problem(fmt.Sprintf("%s must be a whole number between 0 (unlimited) and %d", name, max))
		return 0
	}
	return n
}

func (r *reader) list(name string) []string {
	var out []string
	for _, p := range strings.Split(r.getenv(name), ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func (r *reader) cognito() Cognito {
	var c Cognito
	c.Issuer = strings.TrimRight(strings.TrimSpace(r.getenv("COGNITO_ISSUER")), "/")
	if c.Issuer == "" {
		pool, region := strings.TrimSpace(r.getenv("COGNITO_USER_POOL_ID")), strings.TrimSpace(r.getenv("AWS_REGION"))
		if pool == "" || region == "" {
			r.problem("COGNITO_ISSUER (or COGNITO_USER_POOL_ID with AWS_REGION) is required")
		} else {
			c.Issuer = fmt.Sprintf("https://cognito-idp.%s.amazonaws.com/%s", region, pool)
		}
	} else if u, err := url.Parse(c.Issuer); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		r.problem("COGNITO_ISSUER must be an http(s) URL")
	}
	c.ClientIDs = r.list("COGNITO_CLIENT_IDS")
	if len(c.ClientIDs) == 0 {
		r.problem("COGNITO_CLIENT_IDS is required (comma-separated app client ids)")
	}
	c.TokenUse = r.oneOf("COGNITO_TOKEN_USE", TokenUseAny, TokenUseID, TokenUseAccess, TokenUseAny)
	return c
}

// pool reads the warm pool's variables (both optional).
func (r *reader) pool() (string, time.Duration) {
	name := strings.TrimSpace(r.getenv("AGENT_POOL_AGENT_NAME"))
	if name != "" && !agentNamePattern.MatchString(name) {
		r.problem("AGENT_POOL_AGENT_NAME must be letters, digits, ., - and _ (at most 64), as the worker's LIVEKIT_AGENT_NAME")
	}
	wait := DefaultPoolJoinTimeout
	if v := strings.TrimSpace(r.getenv("AGENT_POOL_JOIN_TIMEOUT_SECONDS")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || time.Duration(n)*time.Second > MaxPoolJoinTimeout {
			r.problem(fmt.Sprintf("AGENT_POOL_JOIN_TIMEOUT_SECONDS must be a whole number of seconds between 1 and %d", int(MaxPoolJoinTimeout/time.Second)))
		} else {
			wait = time.Duration(n) * time.Second
		}
	}
	return name, wait
}

func (r *reader) ecs() ECS {
	e := ECS{
		Cluster:        r.required("ECS_CLUSTER"),
		TaskDefinition: r.required("AGENT_TASK_DEFINITION"),
		ContainerName:  r.required("AGENT_CONTAINER_NAME"),
		Subnets:        r.list("AGENT_SUBNETS"),
		SecurityGroups: r.list("AGENT_SECURITY_GROUPS"),
	}
	if len(e.Subnets) == 0 {
		r.problem("AGENT_SUBNETS is required when AGENT_LAUNCHER=ecs")
	}
	if len(e.SecurityGroups) == 0 {
		r.problem("AGENT_SECURITY_GROUPS is required when AGENT_LAUNCHER=ecs")
	}
	switch strings.ToUpper(strings.TrimSpace(r.getenv("AGENT_ASSIGN_PUBLIC_IP"))) {
	case "", "DISABLED", "FALSE":
	case "ENABLED", "TRUE":
		e.AssignPublicIP = true
	default:
		r.problem("AGENT_ASSIGN_PUBLIC_IP must be ENABLED or DISABLED")
	}
	switch e.CapacityProvider = strings.ToUpper(strings.TrimSpace(r.getenv("AGENT_CAPACITY_PROVIDER"))); e.CapacityProvider {
	case "":
		e.CapacityProvider = "FARGATE"
	case "FARGATE", "FARGATE_SPOT":
	default:
		r.problem("AGENT_CAPACITY_PROVIDER must be FARGATE or FARGATE_SPOT")
	}
	return e
}
