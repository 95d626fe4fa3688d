// Command kstatus prints the kstatus verdict of Kubernetes objects, the one that Argo CD,
// Flux and `kubectl wait`-style tools derive from an object's conditions.
//
// It reads objects from stdin (YAML documents, JSON objects, a JSON array, or a List
// whose items are objects) and writes one JSON line per object, in input order:
//
//	{"apiVersion": "...", "kind": "...", "namespace": "...", "name": "...",
//	 "status": "Current", "message": "..."}
//
// An object that kstatus cannot judge is a readable error on stderr and exit status 1.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type verdict struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
	Status     string `json:"status"`
	Message    string `json:"message"`
}

func main() {
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "kstatus:", err)
		os.Exit(1)
	}
}

func run(in io.Reader, out io.Writer) error {
	objects, err := decode(in)
	if err != nil {
		return err
	}
	writer := bufio.NewWriter(out)
	encoder := json.NewEncoder(writer)
	for i, object := range objects {
		result, err := status.Compute(object)
		if err != nil {
			return fmt.Errorf("object %d (%s %q): %w", i+1, object.GetKind(), object.GetName(), err)
		}
		line := verdict{
			APIVersion: object.GetAPIVersion(),
			Kind:       object.GetKind(),
			Namespace:  object.GetNamespace(),
			Name:       object.GetName(),
			Status:     result.Status.String(),
			Message:    result.Message,
		}
		if err := encoder.Encode(line); err != nil {
			return err
		}
	}
	return writer.Flush()
}

// decode reads every object of a YAML or JSON stream, flattening arrays and Lists.
func decode(in io.Reader) ([]*unstructured.Unstructured, error) {
	decoder := yaml.NewYAMLOrJSONDecoder(in, 4096)
	var objects []*unstructured.Unstructured
	for document := 1; ; document++ {
		var text json.RawMessage
		if err := decoder.Decode(&text); err != nil {
			if errors.Is(err, io.EOF) {
				return objects, nil
			}
			return nil, fmt.Errorf("document %d: %w", document, err)
		}
		// Kubernetes' JSON decoding keeps whole numbers int64 (generation, replicas), as
		// unstructured accessors expect; encoding/json would make them float64.
		var raw interface{}
		if len(text) > 0 {
			if err := utiljson.Unmarshal(text, &raw); err != nil {
				return nil, fmt.Errorf("document %d: %w", document, err)
			}
		}
		found, err := flatten(raw)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", document, err)
		}
		objects = append(objects, found...)
	}
}

func flatten(raw interface{}) ([]*unstructured.Unstructured, error) {
	switch value := raw.(type) {
	case nil:
		return nil, nil // an empty YAML document
	case []interface{}:
		var objects []*unstructured.Unstructured
		for _, item := range value {
			found, err := flatten(item)
			if err != nil {
				return nil, err
			}
			objects = append(objects, found...)
		}
		return objects, nil
	case map[string]interface{}:
		object := &unstructured.Unstructured{Object: value}
		if object.IsList() {
			return flatten(value["items"])
		}
		if object.GetKind() == "" {
			return nil, errors.New("an object without a kind")
		}
		return []*unstructured.Unstructured{object}, nil
	default:
		return nil, fmt.Errorf("expected an object, a list of objects or a List, got %T", raw)
	}
}
