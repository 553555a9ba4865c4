package clusterimage

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"maps"
	"text/template"
)

// TemplateSuffix marks files `sealer run` renders before use (etc/, charts/,
// manifests/ and application/apps/<app>/), writing the result beside them
// without the suffix.
const TemplateSuffix = ".tmpl"

// RenderTemplate renders a *.tmpl file the way `sealer run` does (sealer
// v0.11 pkg/env): Go text/template named after the file's base name, the
// env map as data, functions b64enc and b64dec, and default missing-key
// handling, so a key absent from env renders as "<no value>".
func RenderTemplate(baseName string, text []byte, env map[string]string) ([]byte, error) {
	t, err := template.New(baseName).Funcs(template.FuncMap{
		"b64enc": func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) },
		"b64dec": func(s string) string {
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return err.Error() // sealer writes the error text into the file
			}
			return string(b)
		},
	}).Parse(string(text))
	if err != nil {
		return nil, fmt.Errorf("parse template: %w", err)
	}
	if env == nil {
		env = map[string]string{}
	}
	var out bytes.Buffer
	if err := t.Execute(&out, env); err != nil {
		return nil, fmt.Errorf("render template: %w", err)
	}
	return out.Bytes(), nil
}

// AppEnv is the env sealer renders an app's *.tmpl files with: the app's
// APPENV, then the image env for keys the app does not set.
func AppEnv(app, image map[string]string) map[string]string {
	env := maps.Clone(image)
	if env == nil {
		env = map[string]string{}
	}
	maps.Copy(env, app)
	return env
}
