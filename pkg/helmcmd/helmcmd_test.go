package helmcmd

import (
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		line string
		want []Install
	}{
		{
			line: "helm upgrade --install istiod istiod.tgz -n istio-system --create-namespace -f istiod.values.yaml --wait --timeout 10m",
			want: []Install{{Release: "istiod", Chart: "istiod.tgz", Namespace: "istio-system", ValuesFiles: []string{"istiod.values.yaml"}}},
		},
		{
			line: `kubectl create ns x --dry-run=client -o yaml | kubectl apply -f - && HELM_DEBUG=1 /usr/bin/helm install --namespace=x --values a.yaml,b.yaml --set "a.b=c d" --set-string 'e=f' dapr ./dapr.tgz; echo done`,
			want: []Install{{Release: "dapr", Chart: "./dapr.tgz", Namespace: "x", ValuesFiles: []string{"a.yaml", "b.yaml"}, Set: []string{"a.b=c d"}, SetString: []string{"e=f"}}},
		},
		{
			line: "helm repo add x https://x && helm upgrade a a.tgz && helm install -g c.tgz -nfoo",
			want: []Install{{Chart: "c.tgz", Namespace: "foo"}},
		},
		{
			line: "helm template r r.tgz --kube-version v1.22.15 --set-json 'a={\"b\":1}' -- ",
			want: []Install{{Release: "r", Chart: "r.tgz", KubeVersion: "v1.22.15", SetJSON: []string{`a={"b":1}`}}},
		},
	} {
		got, err := Parse(tc.line)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.line, err)
			continue
		}
		for i := range got {
			got[i].Command = ""
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Parse(%q) =\n%+v\nwant\n%+v", tc.line, got, tc.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for line, want := range map[string]string{
		"helm install x x.tgz --frobnicate y": "does not know whether helm's flag --frobnicate takes a value",
		"helm install x.tgz":                  "takes a release name and a chart",
		"helm install x x.tgz -f":             "needs a value",
		`helm install "x x.tgz`:               "unterminated quote",
	} {
		_, err := Parse(line)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want an error containing %q", line, err, want)
		}
	}
	if got, err := Parse("helm install x x.tgz --frobnicate=y"); err != nil || len(got) != 1 {
		t.Errorf("an unknown flag with =value: %v %v", got, err)
	}
}

func TestValues(t *testing.T) {
	fsys := fstest.MapFS{
		"application/apps/a/base.yaml":  {Data: []byte("image: {repository: r, tag: \"1\"}\nlist: [1, 2]\nkeep: yes\n")},
		"application/apps/a/over.yaml":  {Data: []byte("image: {tag: \"2\"}\nlist: [3]\n")},
		"application/apps/a/cfg/x.conf": {Data: []byte("hello")},
	}
	ins, err := Parse("helm upgrade -i a a.tgz -f base.yaml -f ./over.yaml --set image.pullPolicy=Never --set-string n=1 --set-file conf=cfg/x.conf --set-literal lit=a,b")
	if err != nil {
		t.Fatal(err)
	}
	v, err := ins[0].Values(fsys, "application/apps/a")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"image": map[string]any{"repository": "r", "tag": "2", "pullPolicy": "Never"},
		"list":  []any{float64(3)}, "keep": true, "n": "1", "conf": "hello", "lit": "a,b",
	}
	if !reflect.DeepEqual(v, want) {
		t.Errorf("Values = %#v\nwant %#v", v, want)
	}
	if got := ins[0].Files(); !reflect.DeepEqual(got, []string{"base.yaml", "cfg/x.conf", "over.yaml"}) {
		t.Errorf("Files = %q", got)
	}
	if ins[0].ChartPath() != "a.tgz" {
		t.Errorf("ChartPath = %q", ins[0].ChartPath())
	}
	bad, _ := Parse("helm install a ../a.tgz -f /etc/x.yaml")
	if bad[0].ChartPath() != "" {
		t.Errorf("ChartPath of ../a.tgz = %q", bad[0].ChartPath())
	}
	if _, err := bad[0].Values(fsys, "application/apps/a"); err == nil || !strings.Contains(err.Error(), "not a file of the app directory") {
		t.Errorf("Values with an absolute file: %v", err)
	}
}
