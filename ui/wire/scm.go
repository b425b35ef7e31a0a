package wire

import "gitserver/store"

// SCMConfig is an SCM configuration as admins see it (docs/api.md §10):
// its secrets are never written, only whether they are set.
type SCMConfig struct {
	AccessTokenSet      bool     `json:"access_token_set"`
	AllowedOwners       []string `json:"allowed_owners"`
	APIURL              string   `json:"api_url"`
	ClientID            string   `json:"client_id"`
	ClientSecretSet     bool     `json:"client_secret_set"`
	CreatedAt           Time     `json:"created_at"`
	HostKeyFingerprints []string `json:"host_key_fingerprints"`
	ID                  int64    `json:"id"`
	Kind                string   `json:"kind"`
	Mode                string   `json:"mode"`
	Name                string   `json:"name"`
	ProjectKey          string   `json:"project_key"`
	SSHURL              string   `json:"ssh_url"`
	UpdatedAt           Time     `json:"updated_at"`
	WebsiteURL          string   `json:"website_url"`
}

// NewSCMConfig is c's object.
func NewSCMConfig(c store.SCMConfig) SCMConfig {
	owners, fps := c.AllowedOwners, c.HostKeyFingerprints
	if owners == nil {
		owners = []string{}
	}
	if fps == nil {
		fps = []string{}
	}
	return SCMConfig{AccessTokenSet: c.AccessToken != "", AllowedOwners: owners, APIURL: c.APIURL, ClientID: c.ClientID,
		ClientSecretSet: c.ClientSecret != "", CreatedAt: Time{c.CreatedAt}, HostKeyFingerprints: fps, ID: c.ID, Kind: c.Kind,
		Mode: c.Mode, Name: c.Name, ProjectKey: c.ProjectKey, SSHURL: c.SSHURL, UpdatedAt: Time{c.UpdatedAt}, WebsiteURL: c.WebsiteURL}
}

// SCMConfigSummary is what any signed-in user sees of a configuration.
type SCMConfigSummary struct {
	Connected bool   `json:"connected"`
	ID        int64  `json:"id"`
	Kind      string `json:"kind"`
	Name      string `json:"name"`
}

// SCMConnection is a user's connection (never its tokens).
type SCMConnection struct {
	ConfigID    int64  `json:"config_id"`
	ConnectedAt Time   `json:"connected_at"`
	ExpiresAt   Time   `json:"expires_at"`
	Login       string `json:"login"`
	Refreshable bool   `json:"refreshable"`
}

// NewSCMConnection is c's object.
func NewSCMConnection(c store.SCMConnection) SCMConnection {
	return SCMConnection{ConfigID: c.ConfigID, ConnectedAt: Time{c.CreatedAt}, ExpiresAt: Time{c.Expiry}, Login: c.Login, Refreshable: c.RefreshToken != ""}
}

// SCMOwner is an account a user may create repositories under on a
// provider.
type SCMOwner struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
}
