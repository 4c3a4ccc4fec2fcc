package main

import (
	"fmt"

	"go.yaml.in/yaml/v3"
)

// maxExpanded bounds the values a config file may hold once its aliases
// are expanded: a few aliases of aliases would otherwise make a small file
// billions of values (the "billion laughs").
const maxExpanded = 1 << 20

// resolveAliases returns n with every alias (*name) replaced by the value
// its anchor (&name) marks, and every merge key (<<: *base, or a list of
// them) folded into its mapping as YAML's merge key does: the mapping's
// own keys win over merged ones, and an earlier merged mapping over a
// later one. The loaders then read plain values, each named by the line
// it is written on (an alias's value, by its anchor's line). A value that
// holds itself, a merge of what is no mapping, or an expansion past
// maxExpanded values is an error naming file and line.
func resolveAliases(file string, n *yaml.Node) (*yaml.Node, []error) {
	r := &aliases{file: file, done: map[*yaml.Node]*yaml.Node{}, busy: map[*yaml.Node]bool{}}
	out := r.resolve(n)
	if len(r.errs) == 0 {
		if expanded(out, map[*yaml.Node]int{}) > maxExpanded {
			r.bad(n, fmt.Sprintf("aliases make the file more than %d values, the most a config file may hold", maxExpanded))
		}
	}
	return out, r.errs
}

// aliases is the state of resolveAliases: the nodes resolved, and those
// being resolved (an alias to one of them is a value holding itself).
type aliases struct {
	file string
	done map[*yaml.Node]*yaml.Node
	busy map[*yaml.Node]bool
	errs []error
}

func (r *aliases) bad(n *yaml.Node, msg string) {
	r.errs = append(r.errs, fmt.Errorf("config file %s:%d: %s", r.file, n.Line, msg))
}

func (r *aliases) resolve(n *yaml.Node) *yaml.Node {
	if out, ok := r.done[n]; ok {
		return out
	}
	if r.busy[n] {
		return nil // the alias that led here reports it
	}
	r.busy[n] = true
	defer delete(r.busy, n)
	out := n
	switch n.Kind {
	case yaml.AliasNode:
		if out = r.resolve(n.Alias); out == nil {
			r.bad(n, fmt.Sprintf("alias *%s: a value may not hold itself", n.Value))
			out = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line, Column: n.Column}
		}
	case yaml.SequenceNode, yaml.DocumentNode:
		c := *n
		c.Content = make([]*yaml.Node, len(n.Content))
		for i, e := range n.Content {
			c.Content[i] = r.resolve(e)
		}
		out = &c
	case yaml.MappingNode:
		out = r.mapping(n)
	}
	r.done[n] = out
	return out
}

// mapping resolves a mapping: its own pairs, then those of its merge keys
// whose keys it does not have.
func (r *aliases) mapping(n *yaml.Node) *yaml.Node {
	c := *n
	c.Content = nil
	var merged []*yaml.Node // pairs, in the order they win
	own := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
			merged = append(merged, r.merge(k, v)...)
			continue
		}
		k, v = r.resolve(k), r.resolve(v)
		own[k.Value] = true
		c.Content = append(c.Content, k, v)
	}
	for i := 0; i+1 < len(merged); i += 2 {
		if k := merged[i]; !own[k.Value] {
			own[k.Value] = true
			c.Content = append(c.Content, k, merged[i+1])
		}
	}
	return &c
}

// merge is the pairs a merge key's value v brings: a mapping's, or those
// of a list of mappings, the first first.
func (r *aliases) merge(key, v *yaml.Node) []*yaml.Node {
	const want = "<<: want a mapping, or a list of mappings, to merge (such as <<: *base)"
	v = r.resolve(v)
	var from []*yaml.Node
	switch v.Kind {
	case yaml.MappingNode:
		from = []*yaml.Node{v}
	case yaml.SequenceNode:
		from = v.Content
	}
	if len(from) == 0 {
		r.bad(key, want)
	}
	var pairs []*yaml.Node
	for _, m := range from {
		if m.Kind != yaml.MappingNode {
			r.bad(key, want)
			return nil
		}
		pairs = append(pairs, m.Content...)
	}
	return pairs
}

// expanded is the number of values under n, each alias counted as the
// values it stands for, up to a little past maxExpanded.
func expanded(n *yaml.Node, memo map[*yaml.Node]int) int {
	if size, ok := memo[n]; ok {
		return size
	}
	size := 1
	for _, c := range n.Content {
		if size += expanded(c, memo); size > maxExpanded {
			break
		}
	}
	memo[n] = size
	return size
}
