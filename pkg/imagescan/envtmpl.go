package imagescan

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"maps"
	"strings"
	"text/template"
)

const tmplSuffix = ".tmpl"

// noValue is what text/template prints for a key missing from the env map,
// which is what `sealer run` writes into the rendered file.
const noValue = "<no value>"

// renderEnvTemplate renders a *.tmpl file the way `sealer run` does before it
// uses the file (sealer v0.11 pkg/env): Go text/template named after the file's
// base name, the env map as data, functions b64enc and b64dec, and default
// missing-key handling, so a key absent from env renders as "<no value>".
func renderEnvTemplate(baseName string, text []byte, env map[string]string) ([]byte, error) {
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

// appEnv is the env sealer renders an app's *.tmpl files with: the app's
// APPENV, then the image env for keys the app does not set.
func appEnv(app, image map[string]string) map[string]string {
	env := maps.Clone(image)
	if env == nil {
		env = map[string]string{}
	}
	maps.Copy(env, app)
	return env
}

// missingEnvHint explains a reference spoiled by a key missing from the env.
func missingEnvHint(ref string) string {
	if strings.Contains(ref, noValue) {
		return "; a template key is missing from the env (rendered as " + noValue + ")"
	}
	return ""
}
