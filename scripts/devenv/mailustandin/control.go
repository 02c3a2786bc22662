package mailustandin

import (
	"encoding/json"
	"errors"
	"net/http"
	"smtp-vault/shared/mailu"
)

// The control API lets another process (the local stack, a test) create
// instances and inject faults. It has no authentication, so it refuses
// requests whose Host is not a loopback name: a web page cannot reach it
// through DNS rebinding.

// InstanceInfo is how the control API describes an instance. It never
// carries the API token.
type InstanceInfo struct {
	Domain   string `json:"domain"`
	APIURL   string `json:"api_url"`
	SMTPAddr string `json:"smtp_addr"`
	Faults   Faults `json:"faults"`
}

// Info describes the instance.
func (i *Instance) Info() InstanceInfo {
	return InstanceInfo{Domain: i.domain, APIURL: i.APIURL(), SMTPAddr: i.SMTPAddr(), Faults: i.Faults()}
}

// ControlHandler serves the control API:
//
//	GET    /healthz                   200 {"status": "ok"}
//	GET    /instances                 200 {"instances": [InstanceInfo...]}
//	POST   /instances                 {domain, api_token[, http_addr, smtp_addr]}
//	                                  201 created / 200 existing: InstanceInfo
//	GET    /instances/{domain}        200 InstanceInfo
//	DELETE /instances/{domain}        204 (the tenant's MailU is lost)
//	GET    /instances/{domain}/faults 200 Faults
//	PUT    /instances/{domain}/faults Faults -> 200 Faults
//	GET    /internal                  200 Internal: the internal auth
//	                                  endpoint and relay a front uses
//
// Errors are {"error": {"code", "message"}}.
func (s *Server) ControlHandler(internal Internal) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /internal", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, internal)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /instances", func(w http.ResponseWriter, r *http.Request) {
		list := []InstanceInfo{}
		for _, in := range s.Instances() {
			list = append(list, in.Info())
		}
		writeJSON(w, http.StatusOK, map[string]any{"instances": list})
	})
	mux.HandleFunc("POST /instances", s.controlAdd)
	mux.HandleFunc("GET /instances/{domain}", s.withInstance(func(w http.ResponseWriter, r *http.Request, in *Instance) {
		writeJSON(w, http.StatusOK, in.Info())
	}))
	mux.HandleFunc("DELETE /instances/{domain}", s.withInstance(func(w http.ResponseWriter, r *http.Request, in *Instance) {
		if err := in.Close(); err != nil {
			controlError(w, http.StatusInternalServerError, "internal", err.Error())
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	mux.HandleFunc("GET /instances/{domain}/faults", s.withInstance(func(w http.ResponseWriter, r *http.Request, in *Instance) {
		writeJSON(w, http.StatusOK, in.Faults())
	}))
	mux.HandleFunc("PUT /instances/{domain}/faults", s.withInstance(func(w http.ResponseWriter, r *http.Request, in *Instance) {
		var f Faults
		if !decodeControl(w, r, &f) {
			return
		}
		if err := in.SetFaults(f); err != nil {
			controlError(w, http.StatusServiceUnavailable, "unavailable", err.Error())
			return
		}
		writeJSON(w, http.StatusOK, in.Faults())
	}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		controlError(w, http.StatusNotFound, "not_found", "no such control endpoint")
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !mailu.IsLoopback(r.Host) {
			controlError(w, http.StatusForbidden, "forbidden", "the control API answers only to loopback host names")
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func (s *Server) controlAdd(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Domain   string `json:"domain"`
		APIToken string `json:"api_token"`
		HTTPAddr string `json:"http_addr"`
		SMTPAddr string `json:"smtp_addr"`
	}
	if !decodeControl(w, r, &req) {
		return
	}
	_, existed := s.Instance(req.Domain)
	in, err := s.AddInstance(r.Context(), InstanceConfig{Domain: req.Domain, APIToken: req.APIToken, HTTPAddr: req.HTTPAddr, SMTPAddr: req.SMTPAddr})
	switch {
	case errors.Is(err, ErrInvalid):
		controlError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	case errors.Is(err, ErrInstanceExists):
		controlError(w, http.StatusConflict, "conflict", err.Error())
		return
	case err != nil && in == nil:
		controlError(w, http.StatusServiceUnavailable, "unavailable", err.Error())
		return
	case err != nil:
		// Running but not saved: say so, the caller may retry.
		controlError(w, http.StatusInternalServerError, "state_not_saved", err.Error())
		return
	}
	status := http.StatusCreated
	if existed {
		status = http.StatusOK
	}
	s.log.Info("control: instance ready", "domain", in.domain, "created", !existed)
	writeJSON(w, status, in.Info())
}

func (s *Server) withInstance(fn func(http.ResponseWriter, *http.Request, *Instance)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		in, ok := s.Instance(r.PathValue("domain"))
		if !ok {
			controlError(w, http.StatusNotFound, "not_found", "no instance for domain "+r.PathValue("domain"))
			return
		}
		fn(w, r, in)
	}
}

func decodeControl(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		controlError(w, http.StatusBadRequest, "invalid_request", "malformed JSON body: "+err.Error())
		return false
	}
	return true
}

func controlError(w http.ResponseWriter, status int, code, message string) {
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	body.Error.Code, body.Error.Message = code, message
	writeJSON(w, status, body)
}
