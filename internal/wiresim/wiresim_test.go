package wiresim

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

const goodHealth = `<?xml version="1.0" encoding="utf-8"?><Health xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema">` +
	`<GoalStateIncarnation>1</GoalStateIncarnation><Container><ContainerId>c6d5526c-5ac2-4200-b6e2-56f2b70c5ab2</ContainerId><RoleInstanceList><Role>` +
	`<InstanceId>b61f93d0-e1ed-40b2-b067-22c243233448.vhdprep-test</InstanceId><Health><State>NotReady</State>` +
	`<Details><SubStatus>Provisioning</SubStatus><Description>Starting</Description></Details></Health></Role></RoleInstanceList></Container></Health>`

func post(t *testing.T, s *Server, body string, h map[string]string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.URL()+"/machine?comp=health", strings.NewReader(body))
	req.Header.Set("x-ms-version", ProtocolVersion)
	req.Header.Set("x-ms-agent-name", "test")
	req.Header.Set("Content-Type", "text/xml;charset=utf-8")
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func TestHealthValidation(t *testing.T) {
	s := New()
	defer s.Close()
	if code := post(t, s, goodHealth, nil); code != 200 || len(s.Health()) != 1 || s.Health()[0].SubStatus != "Provisioning" {
		t.Fatalf("good report: %d, %+v", code, s.Health())
	}
	for name, tc := range map[string]struct {
		body string
		h    map[string]string
		code int
	}{
		"malformed":          {strings.Replace(goodHealth, "</State>", "</Stat>", 1), nil, 400},
		"trailing garbage":   {goodHealth + "<x/>", nil, 400},
		"unknown state":      {strings.Replace(goodHealth, ">NotReady<", ">Fine<", 1), nil, 400},
		"bad substatus":      {strings.Replace(goodHealth, ">Provisioning<", ">Whatever<", 1), nil, 400},
		"ready with details": {strings.Replace(goodHealth, ">NotReady<", ">Ready<", 1), nil, 400},
		"long description":   {strings.Replace(goodHealth, "Starting", strings.Repeat("&amp;", 1000), 1), nil, 400},
		"other container":    {strings.Replace(goodHealth, "c6d5526c", "00000000", 1), nil, 400},
		"stale incarnation":  {strings.Replace(goodHealth, ">1</Goal", ">0</Goal", 1), nil, 410},
		"no version":         {goodHealth, map[string]string{"x-ms-version": "2010-12-15"}, 400},
		"no agent name":      {goodHealth, map[string]string{"x-ms-agent-name": ""}, 400},
		"not xml":            {goodHealth, map[string]string{"Content-Type": "application/json"}, 400},
	} {
		if code := post(t, s, tc.body, tc.h); code != tc.code {
			t.Errorf("%s: answered %d, want %d", name, code, tc.code)
		}
	}
	if len(s.Health()) != 1 {
		t.Errorf("rejected reports were recorded: %+v", s.Health())
	}
}

func TestFaults(t *testing.T) {
	s := New()
	defer s.Close()
	s.Fail(1, Drop, "")
	s.Fail(1, Drop, "")
	if code := post(t, s, goodHealth, nil); code != 0 {
		t.Errorf("dropped connection answered %d", code)
	}
	s.Fail(2, 429, "/machine")
	for range 2 {
		if code := post(t, s, goodHealth, nil); code != 429 {
			t.Errorf("answered %d, want 429", code)
		}
	}
	if code := post(t, s, goodHealth, nil); code != 200 {
		t.Errorf("after the faults: %d", code)
	}
	if r := s.Requests(); len(r) != 4 || r[0].Status != 0 || r[1].Status != 429 || r[3].Status != 200 {
		t.Errorf("recorded %+v", r)
	}
}
