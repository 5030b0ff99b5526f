package rooms

import (
	"slices"
	"testing"
	"time"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
)

const (
	apiKey    = "APIdevkey"
	apiSecret = "secret-secret-secret-secret-secret"
)

func TestStudentTokenGrants(t *testing.T) {
	before := time.Now().Truncate(time.Second)
	tok, err := StudentToken(apiKey, apiSecret, "video-s1", "sub-1", "Student One", 15*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.ParseAPIToken(tok)
	if err != nil {
		t.Fatal(err)
	}
	if v.APIKey() != apiKey || v.Identity() != "sub-1" {
		t.Errorf("api key %q identity %q", v.APIKey(), v.Identity())
	}
	if _, _, err := v.Verify("another-secret-another-secret-xx"); err == nil {
		t.Error("token verified with the wrong secret")
	}
	claims, grants, err := v.Verify(apiSecret)
	if err != nil {
		t.Fatal(err)
	}
	if grants.Identity != "sub-1" || grants.Name != "Student One" {
		t.Errorf("identity %q name %q", grants.Identity, grants.Name)
	}
	if grants.Kind != "standard" || grants.GetParticipantKind() != livekit.ParticipantInfo_STANDARD {
		t.Errorf("kind %q", grants.Kind)
	}
	if grants.Metadata != "" || len(grants.Attributes) != 0 || grants.RoomConfig != nil || grants.Agent != nil || grants.SIP != nil {
		t.Errorf("unexpected extra grants: %+v", grants)
	}
	g := grants.Video
	if g == nil {
		t.Fatal("no video grant")
	}
	if !g.RoomJoin || g.Room != "video-s1" {
		t.Errorf("room join %v room %q", g.RoomJoin, g.Room)
	}
	if g.CanSubscribe == nil || !*g.CanSubscribe || g.CanPublish == nil || !*g.CanPublish || g.CanPublishData == nil || !*g.CanPublishData {
		t.Errorf("subscribe %v publish %v data %v", g.CanSubscribe, g.CanPublish, g.CanPublishData)
	}
	if !slices.Equal(g.CanPublishSources, []string{"microphone"}) {
		t.Errorf("canPublishSources %q, want [microphone]", g.CanPublishSources)
	}
	if !slices.Equal(g.GetCanPublishSources(), []livekit.TrackSource{livekit.TrackSource_MICROPHONE}) {
		t.Errorf("publish sources %v", g.GetCanPublishSources())
	}
	if g.RoomCreate || g.RoomList || g.RoomRecord || g.RoomAdmin || g.IngressAdmin || g.Hidden || g.Recorder || g.Agent || g.DestinationRoom != "" {
		t.Errorf("admin grants: %+v", g)
	}
	if g.CanUpdateOwnMetadata != nil && *g.CanUpdateOwnMetadata {
		t.Error("student may update its own metadata")
	}
	if claims.ExpiresAt == nil || claims.NotBefore == nil {
		t.Fatalf("exp %v nbf %v", claims.ExpiresAt, claims.NotBefore)
	}
	if ttl := claims.ExpiresAt.Sub(claims.NotBefore.Time); ttl != 15*time.Minute {
		t.Errorf("exp - nbf = %v, want 15m", ttl)
	}
	if exp := claims.ExpiresAt.Time; exp.Before(before.Add(15*time.Minute)) || exp.After(time.Now().Add(15*time.Minute+time.Second)) {
		t.Errorf("exp %v not 15 min from now", exp)
	}
	if claims.Issuer != apiKey || claims.Subject != "sub-1" {
		t.Errorf("iss %q sub %q", claims.Issuer, claims.Subject)
	}
}

func TestStudentTokenTTL(t *testing.T) {
	for _, ttl := range []time.Duration{time.Minute, time.Hour} {
		tok, err := StudentToken(apiKey, apiSecret, "video-s1", "sub-1", "", ttl)
		if err != nil {
			t.Fatal(err)
		}
		v, _ := auth.ParseAPIToken(tok)
		claims, grants, err := v.Verify(apiSecret)
		if err != nil {
			t.Fatal(err)
		}
		if got := claims.ExpiresAt.Sub(claims.NotBefore.Time); got != ttl {
			t.Errorf("ttl %v, want %v", got, ttl)
		}
		if grants.Name != "" {
			t.Errorf("name %q", grants.Name)
		}
	}
}

func TestStudentTokenNeedsCredentials(t *testing.T) {
	if _, err := StudentToken("", "", "video-s1", "sub-1", "n", time.Minute); err == nil {
		t.Error("token signed without credentials")
	}
}

func TestIsAgent(t *testing.T) {
	for kind, want := range map[livekit.ParticipantInfo_Kind]bool{
		livekit.ParticipantInfo_AGENT:    true,
		livekit.ParticipantInfo_STANDARD: false,
		livekit.ParticipantInfo_EGRESS:   false,
		livekit.ParticipantInfo_SIP:      false,
	} {
		if got := IsAgent(&livekit.ParticipantInfo{Identity: "x", Kind: kind}); got != want {
			t.Errorf("%v: %v", kind, got)
		}
	}
	if IsAgent(nil) {
		t.Error("nil participant is an agent")
	}
}
