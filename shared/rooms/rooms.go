// Package rooms is our side of LiveKit's server API: creating and deleting session rooms, inspecting
// who is in them, and minting the student's access token.
package rooms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/twitchtv/twirp"
)

// Room settings for a counseling session.
const (
	EmptyTimeout     = 300 * time.Second
	DepartureTimeout = 20 * time.Second
	// MaxParticipants: the student, the agent and the avatar participant.
	MaxParticipants = 3
	// callTimeout bounds each LiveKit call; the SDK retries and fails over inside it.
	callTimeout = 5 * time.Second
)

// Metadata is stored on the room so LiveKit-side tooling can tell sessions apart.
type Metadata struct {
	SessionID  string `json:"session_id"`
	CategoryID string `json:"category_id"`
}

// Participant is what the sweeper needs to know about someone in a room.
type Participant struct {
	Identity string
	IsAgent  bool
}

// ErrRoomNotFound is returned when LiveKit has no such room.
var ErrRoomNotFound = errors.New("room not found")

// Service is the room API the handlers use; Client implements it against LiveKit.
type Service interface {
	CreateRoom(ctx context.Context, name string, md Metadata) (sid string, err error)
	DeleteRoom(ctx context.Context, name string) error
	// RoomExists reports whether LiveKit has the room (one call).
	RoomExists(ctx context.Context, name string) (bool, error)
	// Participants lists who is in a room; ErrRoomNotFound if the room does not exist.
	Participants(ctx context.Context, name string) ([]Participant, error)
}

// Client talks to LiveKit's RoomService and AgentDispatchService over Twirp.
type Client struct {
	rs *lksdk.RoomServiceClient
	ad *lksdk.AgentDispatchClient
}

func NewClient(url, apiKey, apiSecret string) *Client {
	return &Client{rs: lksdk.NewRoomServiceClient(url, apiKey, apiSecret), ad: lksdk.NewAgentDispatchServiceClient(url, apiKey, apiSecret)}
}

func (c *Client) CreateRoom(ctx context.Context, name string, md Metadata) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	raw, _ := json.Marshal(md)
	room, err := c.rs.CreateRoom(ctx, &livekit.CreateRoomRequest{
		Name:             name,
		EmptyTimeout:     uint32(EmptyTimeout / time.Second),
		DepartureTimeout: uint32(DepartureTimeout / time.Second),
		MaxParticipants:  MaxParticipants,
		Metadata:         string(raw),
	})
	if err != nil {
		return "", fmt.Errorf("livekit create room: %w", err)
	}
	return room.Sid, nil
}

func (c *Client) DeleteRoom(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	_, err := c.rs.DeleteRoom(ctx, &livekit.DeleteRoomRequest{Room: name})
	if isNotFound(err) {
		return nil // already gone: deleting is idempotent
	}
	if err != nil {
		return fmt.Errorf("livekit delete room: %w", err)
	}
	return nil
}

func (c *Client) RoomExists(ctx context.Context, name string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	list, err := c.rs.ListRooms(ctx, &livekit.ListRoomsRequest{Names: []string{name}})
	if err != nil {
		return false, fmt.Errorf("livekit list rooms: %w", err)
	}
	return len(list.Rooms) > 0, nil
}

func (c *Client) Participants(ctx context.Context, name string) ([]Participant, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	list, err := c.rs.ListRooms(ctx, &livekit.ListRoomsRequest{Names: []string{name}})
	if err != nil {
		return nil, fmt.Errorf("livekit list rooms: %w", err)
	}
	if len(list.Rooms) == 0 {
		return nil, ErrRoomNotFound
	}
	res, err := c.rs.ListParticipants(ctx, &livekit.ListParticipantsRequest{Room: name})
	if isNotFound(err) {
		return nil, ErrRoomNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("livekit list participants: %w", err)
	}
	out := make([]Participant, 0, len(res.Participants))
	for _, p := range res.Participants {
		out = append(out, Participant{Identity: p.Identity, IsAgent: IsAgent(p)})
	}
	return out, nil
}

// AgentIdentity is the identity the session's agent joins with (both the cold and the pool path);
// the avatar joins as another agent-kind participant.
func AgentIdentity(sessionID string) string { return "agent-" + sessionID }

// IsAgent tells the counselor agent and its avatar apart from the student.
func IsAgent(p *livekit.ParticipantInfo) bool {
	return p.GetKind() == livekit.ParticipantInfo_AGENT
}

func isNotFound(err error) bool {
	var te twirp.Error
	return errors.As(err, &te) && te.Code() == twirp.NotFound
}

// StudentToken mints the student's join token: this room only, subscribe, data, microphone only.
func StudentToken(apiKey, apiSecret, room, identity, name string, ttl time.Duration) (string, error) {
	grant := &auth.VideoGrant{RoomJoin: true, Room: room, CanSubscribe: ptr(true), CanPublish: ptr(true)}
	grant.SetCanPublishData(true)
	grant.SetCanPublishSources([]livekit.TrackSource{livekit.TrackSource_MICROPHONE})
	tok, err := auth.NewAccessToken(apiKey, apiSecret).
		SetIdentity(identity).
		SetName(name).
		SetKind(livekit.ParticipantInfo_STANDARD).
		SetValidFor(ttl).
		SetVideoGrant(grant).
		ToJWT()
	if err != nil {
		return "", fmt.Errorf("sign student token: %w", err)
	}
	return tok, nil
}

func ptr[T any](v T) *T { return &v }
