package wire

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"unicode/utf8"
)

// State is the role instance's health state in a health report.
type State string

// The states a guest agent reports.
const (
	Ready    State = "Ready"
	NotReady State = "NotReady"
)

// SubStatus qualifies NotReady.
type SubStatus string

// The provisioning sub-statuses WALinuxAgent reports.
const (
	Provisioning       SubStatus = "Provisioning"
	ProvisioningFailed SubStatus = "ProvisioningFailed"
)

// MaxDescriptionBytes is the longest Description the wire server accepts;
// a longer one makes the whole health report fail (WALinuxAgent's comment
// in wire.py). The limit applies to the escaped UTF-8 text.
const MaxDescriptionBytes = 4096

// Health is one health report.
type Health struct {
	State       State
	SubStatus   SubStatus // only with NotReady
	Description string    // free text shown in the portal; trimmed to the limit
}

// validate refuses reports the wire server would reject or misread.
func (h Health) validate() error {
	switch h.State {
	case Ready:
		if h.SubStatus != "" {
			return fmt.Errorf("%w: state Ready takes no sub-status (got %q)", ErrInvalidReport, h.SubStatus)
		}
	case NotReady:
	default:
		return fmt.Errorf("%w: state %q is neither Ready nor NotReady", ErrInvalidReport, h.State)
	}
	return nil
}

// MarshalHealth builds the health report document for goal state g, in the
// shape WALinuxAgent sends (wire.py, _build_health_report): the goal state's
// incarnation echoed, container and role instance named, Details only when
// there is a sub-status.
func MarshalHealth(g *GoalState, h Health) ([]byte, error) {
	if err := h.validate(); err != nil {
		return nil, err
	}
	if !g.HasRoleInstance() {
		return nil, fmt.Errorf("%w: goal state incarnation %s names no role instance", ErrInvalidReport, g.Incarnation)
	}
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="utf-8"?>`)
	b.WriteString(`<Health xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema">`)
	element(&b, "GoalStateIncarnation", g.Incarnation)
	b.WriteString("<Container>")
	element(&b, "ContainerId", g.ContainerID)
	b.WriteString("<RoleInstanceList><Role>")
	element(&b, "InstanceId", g.InstanceID)
	b.WriteString("<Health>")
	element(&b, "State", string(h.State))
	if h.SubStatus != "" {
		b.WriteString("<Details>")
		element(&b, "SubStatus", string(h.SubStatus))
		b.WriteString("<Description>")
		b.Write(TrimDescription(h.Description))
		b.WriteString("</Description></Details>")
	}
	b.WriteString("</Health></Role></RoleInstanceList></Container></Health>")
	return b.Bytes(), nil
}

func element(b *bytes.Buffer, name, text string) {
	b.WriteString("<" + name + ">")
	xml.EscapeText(b, []byte(text))
	b.WriteString("</" + name + ">")
}

// TrimDescription returns s XML-escaped and cut, at a character boundary,
// to at most MaxDescriptionBytes. Characters XML cannot carry become U+FFFD.
func TrimDescription(s string) []byte {
	var b bytes.Buffer
	var one bytes.Buffer
	for len(s) > 0 {
		_, n := utf8.DecodeRuneInString(s)
		one.Reset()
		xml.EscapeText(&one, []byte(s[:n]))
		if b.Len()+one.Len() > MaxDescriptionBytes {
			break
		}
		b.Write(one.Bytes())
		s = s[n:]
	}
	return b.Bytes()
}
