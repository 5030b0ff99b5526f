package devstack

import (
	"encoding/json"
	"net/http"
	"path/filepath"

	"counselvideo/infra/localstack"
)

// PlaygroundConfig is what the playground page needs to know about the local stack; it is served as
// /config.json so the page holds no hard-coded ports.
type PlaygroundConfig struct {
	APIURL          string `json:"api_url"`
	CognitoEndpoint string `json:"cognito_endpoint"`
	CognitoClientID string `json:"cognito_client_id"`
	Username        string `json:"username"`
	Password        string `json:"password"`
}

// playgroundHandler serves playground/ (the page and livekit-client from its node_modules) plus the
// stack's config.
func playgroundHandler(paths localstack.Paths, r *Running) http.Handler {
	dir := filepath.Join(paths.Root, "playground")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /config.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(PlaygroundConfig{
			APIURL: r.APIURL, CognitoEndpoint: r.Stack.Cognito.Endpoint, CognitoClientID: r.Pool.ClientID,
			Username: StudentUsername, Password: StudentPassword,
		})
	})
	mux.Handle("GET /vendor/livekit-client/", http.StripPrefix("/vendor/livekit-client/",
		http.FileServer(http.Dir(filepath.Join(dir, "node_modules", "livekit-client", "dist")))))
	mux.Handle("GET /", http.FileServer(http.Dir(filepath.Join(dir, "public"))))
	return mux
}
