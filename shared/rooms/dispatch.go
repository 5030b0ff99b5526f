package rooms

import (
	"context"
	"fmt"
	"time"

	"github.com/livekit/protocol/livekit"
)

// Warm-pool calls (agents.Pool): dispatching a named agent to a session's room, taking the dispatch
// back, and checking whether a participant is in the room. They implement agents.Dispatcher.

// presenceCallTimeout bounds one presence check: the pool polls it several times a second.
const presenceCallTimeout = time.Second

// CreateDispatch asks LiveKit to send agent agentName to room with metadata; it returns the
// dispatch id. LiveKit answers without error even when no worker takes the job (livekit-server
// 1.13.5 drops it): the agent joining the room is the only reliable signal.
func (c *Client) CreateDispatch(ctx context.Context, room, agentName, metadata string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	d, err := c.ad.CreateDispatch(ctx, &livekit.CreateAgentDispatchRequest{Room: room, AgentName: agentName, Metadata: metadata})
	if err != nil {
		return "", fmt.Errorf("livekit create dispatch: %w", err)
	}
	return d.GetId(), nil
}

// DeleteDispatch takes a dispatch back: LiveKit ends its job and removes its agent from the room. A
// dispatch or room that is already gone is not an error: a deleted room ended its jobs. The room is
// checked first because livekit-server 1.13.5 answers a delete in a gone room only after seconds,
// with "unavailable: no response from servers" instead of not found.
func (c *Client) DeleteDispatch(ctx context.Context, room, dispatchID string) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	if exists, err := c.RoomExists(ctx, room); err == nil && !exists {
		return nil
	}
	_, err := c.ad.DeleteDispatch(ctx, &livekit.DeleteAgentDispatchRequest{Room: room, DispatchId: dispatchID})
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		if exists, rerr := c.RoomExists(context.WithoutCancel(ctx), room); rerr == nil && !exists {
			return nil // deleted meanwhile
		}
		return fmt.Errorf("livekit delete dispatch: %w", err)
	}
	return nil
}

// ParticipantPresent reports whether identity is in room (a missing room: false).
func (c *Client) ParticipantPresent(ctx context.Context, room, identity string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, presenceCallTimeout)
	defer cancel()
	p, err := c.rs.GetParticipant(ctx, &livekit.RoomParticipantIdentity{Room: room, Identity: identity})
	if isNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("livekit get participant: %w", err)
	}
	return p.GetState() != livekit.ParticipantInfo_DISCONNECTED, nil
}
