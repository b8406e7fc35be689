package web

import "net/http"

type readiness struct {
	Ready   bool     `json:"ready"`
	Missing []string `json:"missing,omitempty"`
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz is 200 only when every check holds; it names the ones that fail.
func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	ready, missing := s.ready()
	body := readiness{Ready: ready, Missing: missing}
	status := http.StatusOK
	if !body.Ready {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, body)
}

// ready evaluates the readiness checks and names the failing ones.
func (s *Server) ready() (bool, []string) {
	var missing []string
	for _, c := range s.checks {
		if !c.Ready() {
			missing = append(missing, c.Name)
		}
	}
	return len(missing) == 0, missing
}
