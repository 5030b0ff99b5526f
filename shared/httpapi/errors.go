package httpapi

import (
	"encoding/json"
	"net/http"
)

// Error codes of the API's one error shape.
const (
	CodeBadRequest       = "bad_request"
	CodeUnauthorized     = "unauthorized"
	CodeNotFound         = "not_found"
	CodeMethodNotAllowed = "method_not_allowed"
	CodePayloadTooLarge  = "payload_too_large"
	CodeUnsupportedMedia = "unsupported_media_type"
	CodeValidation       = "validation_failed"
	CodeCategoryNotFound = "category_not_found"
	CodeSessionNotFound  = "session_not_found"
	CodeSessionClosed    = "session_closed"
	CodeAuthUnavailable  = "auth_unavailable"
	// CodeStudentLimitReached (429) and CodeCapacityReached (503) are create-room's cost guards.
	CodeStudentLimitReached = "student_limit_reached"
	CodeCapacityReached     = "capacity_reached"
	CodeInternal            = "internal_error"
)

// ErrorCodes lists every code above (the OpenAPI document's test compares its enum with this).
var ErrorCodes = []string{
	CodeBadRequest, CodeUnauthorized, CodeNotFound, CodeMethodNotAllowed, CodePayloadTooLarge,
	CodeUnsupportedMedia, CodeValidation, CodeCategoryNotFound, CodeSessionNotFound, CodeSessionClosed,
	CodeAuthUnavailable, CodeStudentLimitReached, CodeCapacityReached, CodeInternal,
}

// ErrorBody is the one JSON error shape: {"error": {...}}.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

type ErrorDetail struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	Field     string `json:"field,omitempty"`
	RequestID string `json:"request_id"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, r *http.Request, status int, code, message, field string) {
	writeJSON(w, status, ErrorBody{Error: ErrorDetail{Code: code, Message: message, Field: field, RequestID: RequestID(r.Context())}})
}

// WriteError writes the one error shape for handlers outside this package (the LiveKit webhook).
func WriteError(w http.ResponseWriter, status int, code, message, requestID string) {
	writeJSON(w, status, ErrorBody{Error: ErrorDetail{Code: code, Message: message, RequestID: requestID}})
}
