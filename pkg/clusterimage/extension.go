// Package clusterimage is the Sealer ClusterImage format: the
// sealer.image.extension annotation (written as the v0.9–v0.11 superset), the
// labels that carry meaning, the container-image list, and the pure assembly
// of an image's config and manifest. It does no I/O.
package clusterimage

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Annotation and label keys of the sealer format (sealer-format.md §2.3, §2.4).
const (
	AnnotationExtension       = "sealer.image.extension"
	AnnotationContainerImages = "sealer.image.container.images"

	LabelSealerVersion        = "io.sealer.version"
	LabelClusterRuntimeType   = "cluster.alpha.sealer.io/cluster-runtime-type"
	LabelContainerRuntimeType = "cluster.alpha.sealer.io/container-runtime-type"
	// LabelClusterRuntimeVersion is informational to sealer; cnstack renders
	// charts for the Kubernetes it names and refuses charts that exclude it.
	LabelClusterRuntimeVersion = "cluster.alpha.sealer.io/cluster-runtime-version"
	LabelKubeCNI               = "cluster.alpha.sealer.io/kube-cni"
	LabelKubeCSI               = "cluster.alpha.sealer.io/kube-csi"
	LabelSupportedKubeVersion  = "app.alpha.sealer.io/supported-kube-version"

	KubeInstaller = "kube-installer"
	AppInstaller  = "app-installer"

	SchemaVersion = "v1alpha1"
	// SealerVersion is the sealer release whose format cnstack writes.
	SealerVersion = "v0.11.0"
	// BuildahVersion is what sealer v0.11 records; nothing reads it, but
	// writing the same value keeps extensions comparable with sealer's.
	BuildahVersion = "1.27.1"

	AppRoot = "application/apps"
)

// Build-time manifest annotations: what a build was made from, for
// provenance. Paths are relative to the build context, so they do not
// depend on where the context lives.
const (
	AnnotationKubefileDigest = "io.cnstack.build.kubefile.digest" // sha256 of the Kubefile
	AnnotationKubefile       = "io.cnstack.build.kubefile"        // the Kubefile's path in the context
	AnnotationContextDigest  = "io.cnstack.build.context.digest"  // digest over every file the build copied
	AnnotationLockDigest     = "io.cnstack.build.lock.digest"     // sha256 of the lock file
	AnnotationLock           = "io.cnstack.build.lock"            // the lock file's name
	AnnotationStack          = "io.cnstack.stack"                 // the stack the image is a layer of
)

// Extension is the value of the sealer.image.extension annotation.
type Extension struct {
	BuildClient   BuildClient       `json:"buildClient"`
	SchemaVersion string            `json:"schemaVersion"`
	Type          string            `json:"type,omitempty"`
	Applications  []Application     `json:"applications,omitempty"`
	Labels        map[string]string `json:"labels,omitempty"`
	Env           map[string]string `json:"env,omitempty"`
	Launch        Launch            `json:"launch"`
}

// BuildClient records which builder made the image.
type BuildClient struct {
	SealerVersion  string `json:"sealerVersion"`
	BuildahVersion string `json:"buildahVersion"`
}

// Application is one app of the image (APP, CNI, CSI).
type Application struct {
	Name    string            `json:"name"`
	Type    string            `json:"type,omitempty"`
	Files   []string          `json:"files,omitempty"`
	Version string            `json:"version,omitempty"`
	Env     map[string]string `json:"env,omitempty"`
	Cmds    []string          `json:"cmds,omitempty"`
	// LaunchFiles is Files under its sealer v0.9.0 name; Marshal fills it.
	LaunchFiles []string `json:"launchfiles,omitempty"`
}

// Launch is what `sealer run` starts.
type Launch struct {
	Cmds     []string `json:"cmds,omitempty"`
	AppNames []string `json:"app_names,omitempty"`
	// AppConfigs carries APPCMDS for sealer v0.9.1–v0.10; Marshal fills it.
	AppConfigs []AppConfig `json:"appConfigs,omitempty"`
}

// AppConfig is the v0.9.1–v0.10 home of an app's APPCMDS.
type AppConfig struct {
	Name   string    `json:"name"`
	Launch AppLaunch `json:"launch"`
}

// AppLaunch holds an app's commands in the v0.10 schema.
type AppLaunch struct {
	Cmds []string `json:"cmds,omitempty"`
}

// ContainerImage is one entry of the sealer.image.container.images annotation.
type ContainerImage struct {
	Image    string    `json:"image"`
	AppName  string    `json:"appName,omitempty"`
	Platform *Platform `json:"platform"`
}

// Platform is sealer's platform struct (all fields optional): the wire form
// of a platform in the container images annotation.
type Platform struct {
	Architecture string `json:"architecture,omitempty"`
	OS           string `json:"os,omitempty"`
	Variant      string `json:"variant,omitempty"`
}

// NewPlatform returns the annotation form of p.
func NewPlatform(p ocispec.Platform) *Platform {
	return &Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant}
}

// OCI returns p as an OCI platform.
func (p Platform) OCI() ocispec.Platform {
	return ocispec.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant}
}

// NewExtension returns an empty extension of the given type
// (kube-installer when typ is empty).
func NewExtension(typ string) *Extension {
	if typ == "" {
		typ = KubeInstaller
	}
	return &Extension{
		BuildClient:   BuildClient{SealerVersion: SealerVersion, BuildahVersion: BuildahVersion},
		SchemaVersion: SchemaVersion,
		Type:          typ,
	}
}

// ValidateType checks an image type given on the command line.
func ValidateType(typ string) error {
	switch typ {
	case KubeInstaller, AppInstaller:
		return nil
	}
	return fmt.Errorf("image type %q is not valid: use %s (a cluster image sealer run installs) or %s (an application installed onto an existing cluster)", typ, KubeInstaller, AppInstaller)
}

// ParseExtension reads an annotation value written by any sealer v0.9–v0.11
// or by cnstack: v0.9.0 launchfiles become files, v0.10 appConfigs become
// applications[].cmds.
func ParseExtension(s string) (*Extension, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("%s does not exist", AnnotationExtension)
	}
	var e Extension
	if err := json.Unmarshal([]byte(s), &e); err != nil {
		return nil, fmt.Errorf("%s is not valid JSON: %w", AnnotationExtension, err)
	}
	for i := range e.Applications {
		a := &e.Applications[i]
		if len(a.Files) == 0 {
			a.Files = a.LaunchFiles
		}
		a.LaunchFiles = nil
	}
	for _, c := range e.Launch.AppConfigs {
		if a := e.App(c.Name); a != nil && len(a.Cmds) == 0 {
			a.Cmds = c.Launch.Cmds
		}
	}
	e.Launch.AppConfigs = nil
	return &e, nil
}

// App returns the application called name, or nil.
func (e *Extension) App(name string) *Application {
	for i := range e.Applications {
		if e.Applications[i].Name == name {
			return &e.Applications[i]
		}
	}
	return nil
}

// AppNames lists the applications' names in order.
func (e *Extension) AppNames() []string {
	out := make([]string, 0, len(e.Applications))
	for _, a := range e.Applications {
		out = append(out, a.Name)
	}
	return out
}

// SetApp adds app, or replaces the app of that name in place (as sealer does
// when a Kubefile redeclares an inherited app).
func (e *Extension) SetApp(app Application) {
	if a := e.App(app.Name); a != nil {
		*a = app
		return
	}
	e.Applications = append(e.Applications, app)
}

// Inherit starts a child image's extension from its base, as sealer does:
// applications are inherited; launch, env and the type are not.
func Inherit(base *Extension, typ string) *Extension {
	e := NewExtension(typ)
	if base != nil {
		for _, a := range base.Applications {
			e.Applications = append(e.Applications, cloneApp(a))
		}
	}
	return e
}

func cloneApp(a Application) Application {
	a.Files = append([]string(nil), a.Files...)
	a.Cmds = append([]string(nil), a.Cmds...)
	if a.Env != nil {
		env := make(map[string]string, len(a.Env))
		for k, v := range a.Env {
			env[k] = v
		}
		a.Env = env
	}
	return a
}

// Marshal writes the cross-version superset: files and launchfiles both, and
// APPCMDS in both applications[].cmds (v0.11) and launch.appConfigs (v0.9.1–v0.10).
// encoding/json sorts map keys, so the bytes are deterministic.
func (e *Extension) Marshal() ([]byte, error) {
	out := *e
	out.Labels = nil // sealer fills labels from the config at inspect time; build never writes them
	out.Applications = make([]Application, len(e.Applications))
	out.Launch.AppConfigs = nil
	for i, a := range e.Applications {
		a = cloneApp(a)
		a.LaunchFiles = a.Files
		out.Applications[i] = a
		if len(a.Cmds) > 0 {
			out.Launch.AppConfigs = append(out.Launch.AppConfigs, AppConfig{Name: a.Name, Launch: AppLaunch{Cmds: a.Cmds}})
		}
	}
	return json.Marshal(out)
}

// FoldLabels is what sealer inspect shows as imageExtension.labels: the
// per-plugin kube-cni-<name>/kube-csi-<name> labels folded into JSON lists.
func FoldLabels(labels map[string]string) map[string]string {
	if len(labels) == 0 {
		return labels
	}
	out := map[string]string{}
	var cni, csi []string
	for k, v := range labels {
		switch {
		case strings.HasPrefix(k, LabelKubeCNI+"-"):
			cni = append(cni, strings.TrimPrefix(k, LabelKubeCNI+"-"))
		case strings.HasPrefix(k, LabelKubeCSI+"-"):
			csi = append(csi, strings.TrimPrefix(k, LabelKubeCSI+"-"))
		default:
			out[k] = v
		}
	}
	for key, list := range map[string][]string{LabelKubeCNI: cni, LabelKubeCSI: csi} {
		if len(list) > 0 {
			sort.Strings(list)
			b, _ := json.Marshal(list)
			out[key] = string(b)
		}
	}
	return out
}

// ParseContainerImages reads the sealer.image.container.images annotation.
func ParseContainerImages(s string) ([]ContainerImage, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var list []ContainerImage
	if err := json.Unmarshal([]byte(s), &list); err != nil {
		return nil, fmt.Errorf("%s is not a JSON list: %w", AnnotationContainerImages, err)
	}
	return list, nil
}

// MarshalContainerImages writes the annotation sorted by image and app.
func MarshalContainerImages(list []ContainerImage) ([]byte, error) {
	out := append([]ContainerImage(nil), list...)
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Image != out[j].Image {
			return out[i].Image < out[j].Image
		}
		return out[i].AppName < out[j].AppName
	})
	return json.Marshal(out)
}
