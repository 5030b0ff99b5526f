// Package httpapi is the student-facing HTTP API: routes, request decoding, authentication and the
// one JSON error shape. The same handler serves API Gateway (through the Lambda adapter) and make dev.
package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"counselvideo/shared/auth"
	"counselvideo/shared/categories"
	"counselvideo/shared/logging"
	"counselvideo/shared/service"
)

// MaxBodyBytes caps request bodies.
const MaxBodyBytes = 16 << 10

// Authenticator checks the Authorization header.
type Authenticator interface {
	Authenticate(ctx context.Context, header string) (auth.Student, error)
}

type API struct {
	Service *service.Service
	Auth    Authenticator
	Log     *slog.Logger
	// AllowedOrigins get CORS headers; empty means no cross-origin access.
	AllowedOrigins []string
	// RequestIDFrom extracts the platform's request id (API Gateway's in Lambda); nil generates one.
	RequestIDFrom func(*http.Request) string
}

// Route is one method and path pattern the API serves.
type Route struct{ Method, Path string }

type route struct {
	Route
	handle func(*API, http.ResponseWriter, *http.Request, auth.Student)
	// startsSession: each call can start an agent task (see CreateRoomRoutes).
	startsSession bool
}

// routes is the API's one route table: Handler serves it; Routes shows it to the deployment check
// and the OpenAPI document's test. Every route is Cognito-authenticated.
var routes = []route{
	{Route{http.MethodPost, "/api/v1/video/create-room"}, (*API).createRoom, true},
	// The path the original acceptance criteria spell.
	{Route{http.MethodPost, "/api/video/create-room"}, (*API).createRoom, true},
	{Route{http.MethodGet, "/api/v1/video/sessions/{session_id}"}, (*API).getSession, false},
	{Route{http.MethodPost, "/api/v1/video/sessions/{session_id}/end"}, (*API).endSession, false},
	{Route{http.MethodGet, "/api/v1/counselor-categories"}, (*API).listCategories, false},
}

// CreateRoomRoutes are the routes that start sessions (each call can start an agent task): the
// deployment throttles them below the API's default (infra/templatecheck).
func CreateRoomRoutes() []Route {
	var out []Route
	for _, r := range routes {
		if r.startsSession {
			out = append(out, r.Route)
		}
	}
	return out
}

// Routes lists what Handler serves.
func Routes() []Route {
	out := make([]Route, len(routes))
	for i, r := range routes {
		out[i] = r.Route
	}
	return out
}

// Handler returns the API's http.Handler.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	byPath := map[string]map[string]http.HandlerFunc{}
	for _, rt := range routes {
		if byPath[rt.Path] == nil {
			byPath[rt.Path] = map[string]http.HandlerFunc{}
		}
		handle := rt.handle
		byPath[rt.Path][rt.Method] = a.authed(func(w http.ResponseWriter, r *http.Request, st auth.Student) { handle(a, w, r, st) })
	}
	for path, methods := range byPath {
		mux.HandleFunc(path, methodSwitch(methods))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, http.StatusNotFound, CodeNotFound, "no such route", "")
	})
	return a.withRequestContext(a.withCORS(mux))
}

func methodSwitch(methods map[string]http.HandlerFunc) http.HandlerFunc {
	allowed := make([]string, 0, len(methods))
	for m := range methods {
		allowed = append(allowed, m)
	}
	slices.Sort(allowed)
	return func(w http.ResponseWriter, r *http.Request) {
		if h, ok := methods[r.Method]; ok {
			h(w, r)
			return
		}
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		writeError(w, r, http.StatusMethodNotAllowed, CodeMethodNotAllowed, "method not allowed", "")
	}
}

type requestIDKey struct{}

// RequestID returns the request id the middleware attached.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

var safeRequestID = regexp.MustCompile(`^[A-Za-z0-9._=-]{1,128}$`)

func (a *API) withRequestContext(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := ""
		if a.RequestIDFrom != nil {
			id = a.RequestIDFrom(r)
		}
		if !safeRequestID.MatchString(id) {
			id = newRequestID()
		}
		w.Header().Set("X-Request-Id", id)
		ctx := context.WithValue(r.Context(), requestIDKey{}, id)
		ctx = logging.With(ctx, a.Log, "request_id", id)
		r = r.WithContext(ctx)
		defer func() {
			if v := recover(); v != nil {
				logging.From(ctx, a.Log).Error("panic in handler", "panic", v)
				writeError(w, r, http.StatusInternalServerError, CodeInternal, "internal error", "")
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func newRequestID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (a *API) withCORS(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin != "" && slices.Contains(a.AllowedOrigins, origin) {
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Add("Vary", "Origin")
			// The frontend reads the request id and, on a 429/503, when to retry.
			h.Set("Access-Control-Expose-Headers", "X-Request-Id, Retry-After")
			if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
				h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
				h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
				h.Set("Access-Control-Max-Age", "600")
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

type studentKey struct{}

func (a *API) authed(next func(http.ResponseWriter, *http.Request, auth.Student)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		student, err := a.Auth.Authenticate(r.Context(), r.Header.Get("Authorization"))
		if errors.Is(err, auth.ErrKeysUnavailable) {
			// Not the token's fault: a 401 would sign the student out. Retry shortly.
			logging.From(r.Context(), a.Log).Warn("authentication unavailable", "error", err.Error())
			w.Header().Set("Retry-After", strconv.Itoa(int(auth.RetryAfter/time.Second)))
			writeError(w, r, http.StatusServiceUnavailable, CodeAuthUnavailable, "sign-in check temporarily unavailable; retry shortly", "")
			return
		}
		if err != nil {
			logging.From(r.Context(), a.Log).Info("authentication failed", "error", err.Error())
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			writeError(w, r, http.StatusUnauthorized, CodeUnauthorized, "missing or invalid bearer token", "")
			return
		}
		ctx := logging.With(r.Context(), a.Log, "user_id", student.ID)
		next(w, r.WithContext(context.WithValue(ctx, studentKey{}, student)), student)
	}
}

type createRoomRequest struct {
	CounselorCategory *string `json:"counselor_category"`
}

func (a *API) createRoom(w http.ResponseWriter, r *http.Request, student auth.Student) {
	var req createRoomRequest
	if !a.decodeJSON(w, r, &req) {
		return
	}
	if req.CounselorCategory == nil || strings.TrimSpace(*req.CounselorCategory) == "" {
		writeError(w, r, http.StatusUnprocessableEntity, CodeValidation, "counselor_category is required", "counselor_category")
		return
	}
	if _, err := uuid.Parse(*req.CounselorCategory); err != nil || len(*req.CounselorCategory) != 36 {
		writeError(w, r, http.StatusUnprocessableEntity, CodeValidation, "counselor_category must be a UUID", "counselor_category")
		return
	}
	created, err := a.Service.CreateRoom(r.Context(), student, strings.ToLower(*req.CounselorCategory))
	if errors.Is(err, categories.ErrNotFound) {
		writeError(w, r, http.StatusNotFound, CodeCategoryNotFound, "counselor category not found", "counselor_category")
		return
	}
	if errors.Is(err, service.ErrSessionClosed) {
		writeError(w, r, http.StatusConflict, CodeSessionClosed, "the session was ended while it was being set up", "")
		return
	}
	if a.limitRefusal(w, r, err) {
		return
	}
	if err != nil {
		a.internal(w, r, "create room", err)
		return
	}
	writeJSON(w, http.StatusOK, created)
}

func (a *API) getSession(w http.ResponseWriter, r *http.Request, student auth.Student) {
	sess, err := a.Service.Session(r.Context(), student, r.PathValue("session_id"))
	if a.sessionError(w, r, err) {
		return
	}
	writeJSON(w, http.StatusOK, sess)
}

func (a *API) endSession(w http.ResponseWriter, r *http.Request, student auth.Student) {
	sess, err := a.Service.EndSession(r.Context(), student, r.PathValue("session_id"))
	if a.sessionError(w, r, err) {
		return
	}
	writeJSON(w, http.StatusAccepted, sess)
}

func (a *API) sessionError(w http.ResponseWriter, r *http.Request, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, service.ErrSessionNotFound):
		writeError(w, r, http.StatusNotFound, CodeSessionNotFound, "session not found", "")
	default:
		a.internal(w, r, "session", err)
	}
	return true
}

type categoryView struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
}

func (a *API) listCategories(w http.ResponseWriter, r *http.Request, _ auth.Student) {
	list, err := a.Service.ListCategories(r.Context())
	if err != nil {
		a.internal(w, r, "list categories", err)
		return
	}
	views := make([]categoryView, 0, len(list))
	for _, c := range list {
		views = append(views, categoryView{ID: c.ID, Name: c.Name, Description: c.Description})
	}
	writeJSON(w, http.StatusOK, map[string]any{"categories": views})
}

// internal logs the detail and answers 500 with only the request id.
func (a *API) internal(w http.ResponseWriter, r *http.Request, op string, err error) {
	logging.From(r.Context(), a.Log).Error(op+" failed", "error", err.Error())
	writeError(w, r, http.StatusInternalServerError, CodeInternal, "internal error; quote the request id when reporting it", "")
}

// decodeJSON enforces content type, size and syntax; it writes the error response itself.
func (a *API) decodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		writeError(w, r, http.StatusUnsupportedMediaType, CodeUnsupportedMedia, "Content-Type must be application/json", "")
		return false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		writeError(w, r, http.StatusRequestEntityTooLarge, CodePayloadTooLarge, "request body exceeds 16 KiB", "")
		return false
	}
	if err != nil {
		writeError(w, r, http.StatusBadRequest, CodeBadRequest, "could not read request body", "")
		return false
	}
	err = json.Unmarshal(body, v)
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) && typeErr.Field != "" {
		writeError(w, r, http.StatusUnprocessableEntity, CodeValidation, typeErr.Field+" has the wrong type", typeErr.Field)
		return false
	}
	if err != nil {
		writeError(w, r, http.StatusBadRequest, CodeBadRequest, "request body is not a valid JSON object", "")
		return false
	}
	return true
}
