package template_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/internal/template"
)

// upper is a Syntax whose names are put in upper-cased, with a mark on the
// first one, and whose templates may not hold '!'.
var upper = template.Syntax{
	What: "test template",
	Check: func(s string) error {
		if strings.Contains(s, "!") {
			return errors.New("no '!'")
		}
		return nil
	},
	Escape: func(dst []byte, name string, first bool) []byte {
		if first {
			dst = append(dst, '^')
		}
		return append(dst, strings.ToUpper(name)...)
	},
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, tpl, want string
	}{
		{"Literal", "a/b", "a/b"},
		{"Both", "x/{source}/{point}", "x/S1/P1"},
		{"FirstPart", "{source}-{point}", "^S1-P1"},
		{"Adjacent", "{point}{source}{point}", "^P1S1P1"},
		{"Repeated", "{source}.{source}", "^S1.S1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tp, err := template.Parse(tc.tpl, upper)
			require.NoError(t, err)
			assert.Equal(t, tc.want, string(tp.Append(nil, "s1", "p1")))
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, tpl, want string
	}{
		{"Empty", "", "empty test template"},
		{"InvalidUTF8", "a\xff", `test template "a\xff" is not valid UTF-8`},
		{"Check", "a!{point}", "no '!'"},
		{"StrayClose", "a}{point}", `test template "a}{point}": '}' at offset 1 without '{'`},
		{"Unclosed", "{point}/{source", `test template "{point}/{source": '{' at offset 8 is not closed`},
		{"Unknown", "m/{device}", `test template "m/{device}": unknown placeholder {device} at offset 2 (known: {source}, {point})`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := template.Parse(tc.tpl, upper)
			require.EqualError(t, err, tc.want)
		})
	}
}

func TestParts(t *testing.T) {
	tp, err := template.Parse("a{source}b{point}", template.Syntax{What: "t"})
	require.NoError(t, err)
	assert.Equal(t, []template.Part{
		{Kind: template.Literal, Text: "a"}, {Kind: template.Source},
		{Kind: template.Literal, Text: "b"}, {Kind: template.Point},
	}, tp.Parts())
	assert.Equal(t, "aS.Tb/", string(tp.Append(nil, "S.T", "/")), "no Escape: names go in as they are")
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"m2m/{source}/{point}", "{", "}", "{point", "a{}b", "{source}{source}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tp, err := template.Parse(s, template.Syntax{What: "t"})
		if err != nil {
			return
		}
		// Expanding with the placeholders' own text gives the template back.
		assert.Equal(t, s, string(tp.Append(nil, "{source}", "{point}")))
	})
}

func ExampleParse() {
	syn := template.Syntax{
		What: "topic template",
		Escape: func(dst []byte, name string, _ bool) []byte {
			return append(dst, strings.ReplaceAll(name, "/", "_")...)
		},
	}
	t, err := template.Parse("m2m/{source}/{point}", syn)
	if err != nil {
		panic(err)
	}
	fmt.Println(string(t.Append(nil, "plc/1", "temp")))
	_, err = template.Parse("m2m/{device}", syn)
	fmt.Println(err)
	// Output:
	// m2m/plc_1/temp
	// topic template "m2m/{device}": unknown placeholder {device} at offset 4 (known: {source}, {point})
}

// TestMaxLen is issue 10 defect 6: a 70,000-byte template is refused, and
// the error does not quote it.
func TestMaxLen(t *testing.T) {
	_, err := template.Parse(strings.Repeat("a", template.MaxLen), template.Syntax{What: "topic template"})
	require.NoError(t, err)
	_, err = template.Parse(strings.Repeat("a", 70000), template.Syntax{What: "topic template"})
	require.ErrorContains(t, err, "topic template is 70000 bytes, longer than 1024")
	assert.Less(t, len(err.Error()), 100)
}

func TestCache(t *testing.T) {
	tp, err := template.Parse("m/{source}/{point}", upper)
	require.NoError(t, err)
	c := template.NewCache(tp)
	assert.Equal(t, "m/S/P", c.Get("s", "p"))
	assert.Equal(t, "m/S/P", c.Get("s", "p"))
	for i := range template.CacheSize + 10 {
		assert.Equal(t, fmt.Sprintf("m/S/P%d", i), c.Get("s", fmt.Sprint("p", i)))
	}
	assert.Equal(t, "m/S/P", c.Get("s", "p"), "right after the cache was emptied")
}
