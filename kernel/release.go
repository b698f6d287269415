package kernel

import (
	"fmt"
	"strconv"
	"strings"
)

// Release is a kernel version as the rules compare it: 2.6.32-504.el6 is
// {2, 6, 32, RHEL, [504]}.
type Release struct {
	Major, Minor, Patch int
	RHEL                bool  // a Red Hat build (.elN), whose numbers say more than the upstream version
	Build               []int // the distribution's numbers after the dash: 504, or 513.5.1 in 4.18.0-513.5.1.el8_9
}

// ParseRelease reads a kernel version string as uname -r and /lib/modules
// spell it: MAJOR.MINOR[.PATCH][-BUILD...][suffixes].
func ParseRelease(v string) (Release, error) {
	var r Release
	base, build, _ := strings.Cut(v, "-")
	nums := leadingNumbers(base)
	if len(nums) < 2 {
		return Release{}, fmt.Errorf("kernel: version %q does not start with MAJOR.MINOR", v)
	}
	r.Major, r.Minor = nums[0], nums[1]
	if len(nums) > 2 {
		r.Patch = nums[2]
	}
	r.Build = leadingNumbers(build)
	r.RHEL = isRHEL(v)
	return r, nil
}

// leadingNumbers reads the dot-separated numbers s starts with:
// "513.5.1.el8_9" is [513 5 1], "13-cloud-amd64" is [13].
func leadingNumbers(s string) []int {
	if end := strings.IndexFunc(s, func(r rune) bool { return r != '.' && (r < '0' || r > '9') }); end >= 0 {
		s = s[:end]
	}
	var out []int
	for _, part := range strings.Split(s, ".") {
		n, err := strconv.Atoi(part)
		if err != nil || n < 0 {
			break
		}
		out = append(out, n)
	}
	return out
}

// isRHEL finds Red Hat's ".elN" dist tag (el6, el8_9, el9_3).
func isRHEL(v string) bool {
	for {
		i := strings.Index(v, ".el")
		if i < 0 {
			return false
		}
		v = v[i+len(".el"):]
		if v != "" && '0' <= v[0] && v[0] <= '9' {
			return true
		}
	}
}

// Less orders releases by version, then by build numbers.
func (r Release) Less(o Release) bool {
	a, b := [3]int{r.Major, r.Minor, r.Patch}, [3]int{o.Major, o.Minor, o.Patch}
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	for i := range min(len(r.Build), len(o.Build)) {
		if r.Build[i] != o.Build[i] {
			return r.Build[i] < o.Build[i]
		}
	}
	return len(r.Build) < len(o.Build)
}

func (r Release) String() string {
	s := fmt.Sprintf("%d.%d.%d", r.Major, r.Minor, r.Patch)
	for i, b := range r.Build {
		sep := "."
		if i == 0 {
			sep = "-"
		}
		s += sep + strconv.Itoa(b)
	}
	return s
}
