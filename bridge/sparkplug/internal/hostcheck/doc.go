// Package hostcheck holds the self-test of the Sparkplug host application
// the interop tests watch the edge node with (.ci/sparkplug-host, run by
// internal/sparkplughost): hand-made Sparkplug B payloads, built with the
// generated types of sppb and published to Mosquitto, some following every
// rule and some breaking one each, prove that the host decodes what is on
// the wire and reports the rules broken — so that "no violations" from it
// means something. It lives under bridge/sparkplug because sppb is internal
// there. It has tests only.
package hostcheck
