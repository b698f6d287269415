package kmod

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// The index file format libkmod reads (modules.dep.bin and its kin): a
// big-endian header, then a radix trie in pre-order whose node offsets
// carry in their top bits which parts the node has.
const (
	indexMagic   = 0xB007F457
	indexVersion = 0x00020001
	indexRoot    = 12 // the root node follows the three header words

	nodePrefix = 0x80000000
	nodeValues = 0x40000000
	nodeChilds = 0x20000000

	// childMax bounds a key's bytes: libkmod indexes children by ASCII.
	childMax = 128
)

// ErrKey is returned for a key or value libkmod cannot store.
var ErrKey = errors.New("kmod: index keys and values must be ASCII without NUL")

// Index is a module index as depmod writes it: keys (module names,
// aliases) map to values kept in the order of their priority.
type Index struct {
	root *node
}

type node struct {
	prefix      string
	children    [childMax]*node
	first, last int // the range of children present; first > last when none
	values      []value

	size, total uint32 // this node's bytes, and with its subtree
}

type value struct {
	priority uint32
	text     string
}

func newNode(prefix string) *node { return &node{prefix: prefix, first: childMax, last: -1} }

// NewIndex returns an empty index.
func NewIndex() *Index { return &Index{root: newNode("")} }

// Insert adds value under key. Among values of one key a lower priority
// comes first, and a new value goes before those of equal priority, as
// depmod orders them.
func (ix *Index) Insert(key, val string, priority uint32) error {
	if !storable(key) || !storable(val) {
		return fmt.Errorf("%w: %q", ErrKey, key)
	}
	n, i := ix.root, 0
	for {
		// Split n where its prefix stops matching the key.
		for j := 0; j < len(n.prefix); j++ {
			if i+j < len(key) && key[i+j] == n.prefix[j] {
				continue
			}
			child := *n
			child.prefix = n.prefix[j+1:]
			ch := n.prefix[j]
			*n = *newNode(n.prefix[:j])
			n.children[ch] = &child
			n.first, n.last = int(ch), int(ch)
			break
		}
		i += len(n.prefix)
		if i == len(key) {
			n.addValue(val, priority)
			return nil
		}
		ch := key[i]
		if n.children[ch] == nil {
			child := newNode(key[i+1:])
			child.addValue(val, priority)
			n.children[ch] = child
			n.first, n.last = min(n.first, int(ch)), max(n.last, int(ch))
			return nil
		}
		n = n.children[ch]
		i++
	}
}

func storable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 || s[i] >= childMax {
			return false
		}
	}
	return true
}

func (n *node) addValue(text string, priority uint32) {
	i := 0
	for i < len(n.values) && n.values[i].priority < priority {
		i++
	}
	n.values = append(n.values[:i], append([]value{{priority, text}}, n.values[i:]...)...)
}

func (n *node) hasChildren() bool { return n.first <= n.last }

func (n *node) mask() uint32 {
	var m uint32
	if n.hasChildren() {
		m |= nodeChilds
	}
	if n.prefix != "" {
		m |= nodePrefix
	}
	if len(n.values) > 0 {
		m |= nodeValues
	}
	return m
}

func (n *node) measure() uint32 {
	n.size, n.total = 0, 0
	if n.hasChildren() {
		n.size += 2 + 4*uint32(n.last-n.first+1)
		for _, c := range n.children[n.first : n.last+1] {
			if c != nil {
				n.total += c.measure()
			}
		}
	}
	if n.prefix != "" {
		n.size += uint32(len(n.prefix)) + 1
	}
	if len(n.values) > 0 {
		n.size += 4
		for _, v := range n.values {
			n.size += 4 + uint32(len(v.text)) + 1
		}
	}
	n.total += n.size
	return n.total
}

// WriteTo writes the index in libkmod's binary format.
func (ix *Index) WriteTo(w io.Writer) (int64, error) {
	total := ix.root.measure()
	if indexRoot+uint64(total) > 0x0FFFFFFF {
		return 0, errors.New("kmod: index larger than the 256 MiB its offsets can address")
	}
	bw := bufio.NewWriter(w)
	for _, u := range []uint32{indexMagic, indexVersion, indexRoot | ix.root.mask()} {
		binary.Write(bw, binary.BigEndian, u)
	}
	ix.root.write(bw, indexRoot)
	return indexRoot + int64(total), bw.Flush()
}

// write writes n at offset and then its children in order, each child's
// offset in n's table pointing past the subtrees before it.
func (n *node) write(w *bufio.Writer, offset uint32) {
	if n.prefix != "" {
		w.WriteString(n.prefix)
		w.WriteByte(0)
	}
	if n.hasChildren() {
		w.WriteByte(byte(n.first))
		w.WriteByte(byte(n.last))
		next := offset + n.size
		for _, c := range n.children[n.first : n.last+1] {
			var off uint32
			if c != nil {
				off = next | c.mask()
				next += c.total
			}
			binary.Write(w, binary.BigEndian, off)
		}
	}
	if len(n.values) > 0 {
		binary.Write(w, binary.BigEndian, uint32(len(n.values)))
		for _, v := range n.values {
			binary.Write(w, binary.BigEndian, v.priority)
			w.WriteString(v.text)
			w.WriteByte(0)
		}
	}
	next := offset + n.size
	if n.hasChildren() {
		for _, c := range n.children[n.first : n.last+1] {
			if c != nil {
				c.write(w, next)
				next += c.total
			}
		}
	}
}
