package wire

import (
	"testing"

	"github.com/vhdprep/vhdprep/agent/internal/fixtures"
)

const fixtureBase = "http://168.63.129.16:80/machine/865a6683-91d8-450f-99ae/bc8b9d47%2Db5ed%2D4704%2D85d9%2Dfd74cc967ec2.%5Fcanary"
const hibernateBase = "http://168.63.129.16:80/machine/06185f00-1f00-4545-abaa-4b7baa121869/8cd0ae53%2D1ac5%2D4fe5%2D9356%2Da4e1a34f234c.%5Ftest%2Dvm"

func TestGoalStateFixtures(t *testing.T) {
	dir := fixtures.Require(t)
	full := GoalState{
		Version:                  "2010-12-15",
		Incarnation:              "1",
		ExpectedState:            "Started",
		ContainerID:              "c6d5526c-5ac2-4200-b6e2-56f2b70c5ab2",
		InstanceID:               "b61f93d0-e1ed-40b2-b067-22c243233448.MachineRole_IN_0",
		RoleConfigName:           "bc8b9d47-b5ed-4704-85d9-fd74cc967ec2.5.bc8b9d47-b5ed-4704-85d9-fd74cc967ec2.5._canary.1.xml",
		HostingEnvironmentConfig: fixtureBase + "?comp=config&type=hostingEnvironmentConfig&incarnation=1",
		SharedConfig:             fixtureBase + "?comp=config&type=sharedConfig&incarnation=1",
		ExtensionsConfig:         fixtureBase + "?comp=config&type=extensionsConfig&incarnation=1",
		FullConfig:               fixtureBase + "?comp=config&type=fullConfig&incarnation=1",
		Certificates:             fixtureBase + "?comp=certificates&incarnation=1",
	}
	noCerts, noExt := full, full
	noCerts.Certificates = ""
	noExt.ExtensionsConfig = ""
	noop := GoalState{Version: "2010-12-15", Incarnation: "1", ExpectedState: "Started", ContainerID: "c6d5526c-5ac2-4200-b6e2-56f2b70c5ab2"}
	hibernate := GoalState{
		Version:                  "2012-11-30",
		Incarnation:              "1",
		ExpectedState:            "Started",
		ContainerID:              "06185f00-1f00-4545-abaa-4b7baa121869",
		InstanceID:               "8cd0ae53-1baa-4f00-9356-a4e1a34f004c._test-vm",
		RoleConfigName:           "8cd0ae53-1baa-4f00-9356-a4e1a34f004c.0.8cd0ae53-1baa-4f00-9356-a4e1a34f004c.0._test-vm.1.xml",
		HostingEnvironmentConfig: hibernateBase + "?comp=config&type=hostingEnvironmentConfig&incarnation=1",
		SharedConfig:             hibernateBase + "?comp=config&type=sharedConfig&incarnation=1",
		ExtensionsConfig:         hibernateBase + "?comp=config&type=extensionsConfig&incarnation=1",
		FullConfig:               hibernateBase + "?comp=config&type=fullConfig&incarnation=1",
		Certificates:             hibernateBase + "?comp=certificates&incarnation=1",
	}
	for name, want := range map[string]GoalState{
		"wire/goal_state.xml":                  full,
		"wire/goal_state_no_certs.xml":         noCerts,
		"wire/goal_state_no_ext.xml":           noExt,
		"wire/goal_state_noop.xml":             noop,
		"hibernate/goal_state_1/GoalState.xml": hibernate,
	} {
		t.Run(name, func(t *testing.T) {
			g, err := ParseGoalState(fixtures.Read(t, dir, name))
			if err != nil {
				t.Fatal(err)
			}
			if *g != want {
				t.Errorf("parsed\n%+v\nwant\n%+v", *g, want)
			}
			if g.HasRoleInstance() != (want.InstanceID != "") {
				t.Errorf("HasRoleInstance = %v", g.HasRoleInstance())
			}
		})
	}
}

func TestHostingEnvFixtures(t *testing.T) {
	dir := fixtures.Require(t)
	h, err := ParseHostingEnv(fixtures.Read(t, dir, "wire/hosting_env.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if h.Incarnation != "1" || h.VMName != "MachineRole_IN_0" || h.RoleName != "MachineRole" || h.DeploymentName != "db00a7755a5e4e8a8fe4b19bc3b330c3" {
		t.Errorf("hosting_env.xml: %+v", h)
	}
	if len(h.StoredCertificates) != 1 || h.StoredCertificates[0].CertificateID != "sha1:C093FA5CD3AAE057CB7C4E04532B2E16E07C26CA" || h.StoredCertificates[0].StoreName != "My" {
		t.Errorf("hosting_env.xml certificates: %+v", h.StoredCertificates)
	}

	h, err = ParseHostingEnv(fixtures.Read(t, dir, "hibernate/goal_state_1/HostingEnvironmentConfig.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if h.VMName != "_test-vm" || h.RoleName != "" || h.DeploymentName != "" || len(h.StoredCertificates) != 2 ||
		h.StoredCertificates[1].Name != "TenantEncryptionCert" || h.StoredCertificates[1].CertificateID != "sha1:1AF52E2E892C3A0DBC589F301F80073CBA924E26" {
		t.Errorf("hibernate HostingEnvironmentConfig.xml: %+v", h)
	}
}

func TestSharedConfigFixtures(t *testing.T) {
	dir := fixtures.Require(t)
	s, err := ParseSharedConfig(fixtures.Read(t, dir, "wire/shared_config.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Incarnation != "1" || s.VMName != "MachineRole_IN_0" || s.RoleName != "MachineRole" || s.DeploymentName != "db00a7755a5e4e8a8fe4b19bc3b330c3" ||
		len(s.Instances) != 1 || s.Instances[0] != (Instance{ID: "MachineRole_IN_0", Address: "10.115.153.75"}) {
		t.Errorf("shared_config.xml: %+v", s)
	}
	s, err = ParseSharedConfig(fixtures.Read(t, dir, "hibernate/goal_state_1/SharedConfig.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if s.VMName != "_test-vm" || len(s.Instances) != 1 || s.Instances[0] != (Instance{ID: "_test-vm", Address: "10.1.52.28"}) {
		t.Errorf("hibernate SharedConfig.xml: %+v", s)
	}
}

func TestVersionsFixture(t *testing.T) {
	dir := fixtures.Require(t)
	v, err := ParseVersions(fixtures.Read(t, dir, "wire/version_info.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if v.Preferred != "2012-11-30" || len(v.Supported) != 2 || v.Supported[0] != "2010-12-15" || v.Supported[1] != "2010-28-10" {
		t.Errorf("version_info.xml: %+v", v)
	}
	if !v.Supports(ProtocolVersion) || v.Supports("2099-01-01") {
		t.Error("Supports answers wrongly")
	}
}
