package imagescan

import (
	"strings"

	"github.com/cnstack/cnstack/pkg/clusterimage"
)

const tmplSuffix = clusterimage.TemplateSuffix

// noValue is what text/template prints for a key missing from the env map,
// which is what `sealer run` writes into the rendered file.
const noValue = "<no value>"

// renderEnvTemplate renders a *.tmpl file as `sealer run` does.
func renderEnvTemplate(baseName string, text []byte, env map[string]string) ([]byte, error) {
	return clusterimage.RenderTemplate(baseName, text, env)
}

// appEnv is the env sealer renders an app's *.tmpl files with.
func appEnv(app, image map[string]string) map[string]string { return clusterimage.AppEnv(app, image) }

// missingEnvHint explains a reference spoiled by a key missing from the env.
func missingEnvHint(ref string) string {
	if strings.Contains(ref, noValue) {
		return "; a template key is missing from the env (rendered as " + noValue + ")"
	}
	return ""
}
