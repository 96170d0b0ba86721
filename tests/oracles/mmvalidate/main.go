// Command mmvalidate runs Mattermost's own bulk-import validator (the code
// behind `mmctl import validate`) on a bulk-import package and prints a JSON
// summary on stdout.
//
// Usage: mmvalidate [flags] PATH
//
// PATH is either a .zip (a *.jsonl plus data/... attachment entries) or a bare
// .jsonl file. A bare .jsonl is wrapped into a temporary zip (the validator
// only reads zips); if a "data" directory sits next to it, its files are added
// under data/ so attachment paths are still checked.
//
// Exit status: 0 no validation errors, 1 validation errors, 2 usage/IO error.
package main

import (
	"archive/zip"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/shared/i18n"
	"github.com/mattermost/mattermost/server/v8/cmd/mmctl/commands/importer"
	"github.com/mattermost/mattermost/server/v8/cmd/mmctl/printer"
)

type lineError struct {
	Line       uint64 `json:"line"`
	Field      string `json:"field,omitempty"`
	Error      string `json:"error"`
	ErrorID    string `json:"error_id,omitempty"` // Mattermost i18n id when the error is a *model.AppError
	Detail     string `json:"detail,omitempty"`
	Suggestion string `json:"suggestion,omitempty"`
	Message    string `json:"message"`
}

type summary struct {
	OK                bool              `json:"ok"`
	Fatal             string            `json:"fatal,omitempty"`
	File              string            `json:"file"`
	JSONL             string            `json:"jsonl,omitempty"`
	Errors            []lineError       `json:"errors"`
	Lines             uint64            `json:"lines"`
	Counts            map[string]uint64 `json:"counts"`
	CreatedTeams      []string          `json:"created_teams"`
	AttachmentsUsed   []string          `json:"attachments_used"`
	UnusedAttachments []string          `json:"unused_attachments"`
	IgnoreAttachments bool              `json:"ignore_attachments"`
	Translations      string            `json:"translations,omitempty"`
	DurationMS        int64             `json:"duration_ms"`
}

type teamList []string

func (t *teamList) String() string     { return strings.Join(*t, ",") }
func (t *teamList) Set(s string) error { *t = append(*t, s); return nil }

// tmpZip is the temporary zip built for a bare .jsonl; removed on exit.
var tmpZip string

func emit(s summary, code int) {
	if tmpZip != "" {
		os.Remove(tmpZip)
	}
	if s.Errors == nil {
		s.Errors = []lineError{}
	}
	for _, p := range []*[]string{&s.CreatedTeams, &s.AttachmentsUsed, &s.UnusedAttachments} {
		if *p == nil {
			*p = []string{}
		}
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	_ = enc.Encode(s)
	os.Exit(code)
}

func fatal(s summary, format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	fmt.Fprintln(os.Stderr, "mmvalidate: "+msg)
	s.OK = false
	s.Fatal = msg
	emit(s, 2)
}

// wrapJSONL builds a temporary zip holding the .jsonl at its root and, if
// present, the sibling data/ directory (stored, not compressed).
func wrapJSONL(jsonlPath string) (string, error) {
	tmp, err := os.CreateTemp("", "mmvalidate-*.zip")
	if err != nil {
		return "", err
	}
	defer tmp.Close()
	zw := zip.NewWriter(tmp)
	add := func(name, src string) error {
		in, err := os.Open(src)
		if err != nil {
			return err
		}
		defer in.Close()
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store})
		if err != nil {
			return err
		}
		_, err = io.Copy(w, in)
		return err
	}
	if err := add(filepath.Base(jsonlPath), jsonlPath); err != nil {
		return tmp.Name(), err
	}
	dataDir := filepath.Join(filepath.Dir(jsonlPath), "data")
	if st, err := os.Stat(dataDir); err == nil && st.IsDir() {
		err = filepath.WalkDir(dataDir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, err := filepath.Rel(dataDir, p)
			if err != nil {
				return err
			}
			return add("data/"+filepath.ToSlash(rel), p)
		})
		if err != nil {
			return tmp.Name(), err
		}
	}
	return tmp.Name(), zw.Close()
}

func main() {
	ignoreAttachments := flag.Bool("ignore-attachments", false, "do not check attachment files (mmctl --ignore-attachments)")
	checkMissingTeams := flag.Bool("check-missing-teams", false, "report references to teams not defined in the file instead of auto-creating them (mmctl --check-missing-teams)")
	maxPostSize := flag.Int("max-post-size", model.PostMessageMaxRunesV2, "maximum post message length in runes (server MaxPostSize)")
	var teams teamList
	i18nDir := flag.String("i18n-dir", os.Getenv("MMVALIDATE_I18N_DIR"), "directory holding Mattermost's server i18n en.json, to get English messages instead of i18n ids (default: $MMVALIDATE_I18N_DIR, else <binary dir>/i18n)")
	flag.Var(&teams, "team", "predefined team name that already exists on the server (repeatable; mmctl --team)")
	serverUsersFile := flag.String("server-users", "", "JSON array of the users the server already holds (`mmctl user list --all --json`), as `mmctl import validate` loads them from a connected server: posts may refer to them")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: mmvalidate [flags] PATH   (PATH: bulk-import .zip or .jsonl)")
		flag.PrintDefaults()
	}
	systemEmoji := flag.Bool("system-emoji", false, "print the names of Mattermost's system emoji (model.SystemEmojis), sorted, one per line, and exit")
	flag.Parse()
	if *systemEmoji {
		names := make([]string, 0, len(model.SystemEmojis))
		for name := range model.SystemEmojis {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			fmt.Println(name)
		}
		return
	}
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	path := flag.Arg(0)
	s := summary{File: path, IgnoreAttachments: *ignoreAttachments, Counts: map[string]uint64{}}

	st, err := os.Stat(path)
	if err != nil {
		fatal(s, "%v", err)
	}
	if st.IsDir() {
		fatal(s, "%s is a directory", path)
	}
	if *i18nDir == "" {
		if exe, err := os.Executable(); err == nil {
			*i18nDir = filepath.Join(filepath.Dir(exe), "i18n")
		}
	}
	if _, err := os.Stat(filepath.Join(*i18nDir, "en.json")); err == nil {
		if err := i18n.TranslationsPreInit(*i18nDir); err != nil {
			fatal(s, "loading translations from %s: %v", *i18nDir, err)
		}
		model.AppErrorInit(i18n.T)
		s.Translations = filepath.Join(*i18nDir, "en.json")
	}

	archive := path
	bare := false
	if strings.EqualFold(filepath.Ext(path), ".jsonl") {
		tmp, err := wrapJSONL(path)
		tmpZip = tmp
		if err != nil {
			fatal(s, "wrapping %s into a zip: %v", path, err)
		}
		archive = tmp
		bare = true
	}

	// The validator prints progress through mmctl's printer; keep stdout clean.
	printer.SetQuiet(true)

	// Same wiring as `mmctl import validate` run without a server connection.
	serverTeams := make(map[string]*model.Team)
	for _, t := range teams {
		serverTeams[t] = &model.Team{Id: "<predefined>", Name: t, DisplayName: "team was predefined"}
	}
	createMissingTeams := !*checkMissingTeams && len(teams) == 0
	serverUsers, serverEmails := map[string]*model.User{}, map[string]*model.User{}
	if *serverUsersFile != "" {
		data, err := os.ReadFile(*serverUsersFile)
		if err != nil {
			fatal(s, "reading -server-users: %v", err)
		}
		var users []*model.User
		if err := json.Unmarshal(data, &users); err != nil {
			fatal(s, "-server-users %s: not a JSON array of users: %v", *serverUsersFile, err)
		}
		// Keyed by username, which the server-side import resolves post authors by. (mmctl itself keys
		// the map by Nickname, so a connected `mmctl import validate` also flags such users.)
		for _, u := range users {
			serverUsers[u.Username] = u
			serverEmails[u.Email] = u
		}
	}
	v := importer.NewValidator(
		archive,
		*ignoreAttachments,
		createMissingTeams,
		false, // checkServerDuplicates: no server
		serverTeams,
		map[importer.ChannelTeam]*model.Channel{},
		serverUsers,
		serverEmails,
		*maxPostSize,
	)
	v.OnError(func(ive *importer.ImportValidationError) error {
		if s.JSONL == "" {
			s.JSONL = ive.FileName
		}
		if bare {
			ive.Source = filepath.Base(path) // not the temporary zip's name
		}
		e := lineError{Line: ive.CurrentLine, Field: ive.FieldName, Suggestion: ive.Suggestion, Message: ive.Error()}
		if ive.Err != nil {
			e.Error = ive.Err.Error()
			var appErr *model.AppError
			if errors.As(ive.Err, &appErr) {
				e.ErrorID = appErr.Id
				e.Detail = appErr.DetailedError
			}
		}
		s.Errors = append(s.Errors, e)
		return nil // keep going, collect all errors
	})

	err = v.Validate()
	s.Lines = v.Lines()
	s.DurationMS = v.Duration().Milliseconds()
	if err != nil {
		fatal(s, "%v", err)
	}
	s.AttachmentsUsed = v.Attachments()
	s.UnusedAttachments = v.UnusedAttachments()
	s.CreatedTeams = v.CreatedTeams()
	s.Counts = map[string]uint64{
		"roles":           v.Roles(),
		"schemes":         v.Schemes(),
		"teams":           v.TeamCount(),
		"channels":        v.ChannelCount(),
		"users":           v.UserCount(),
		"emojis":          v.Emojis(),
		"posts":           v.PostCount(),
		"direct_channels": v.DirectChannelCount(),
		"direct_posts":    v.DirectPostCount(),
		"attachments":     uint64(len(s.AttachmentsUsed)),
	}
	s.OK = len(s.Errors) == 0
	if s.OK {
		emit(s, 0)
	}
	emit(s, 1)
}
