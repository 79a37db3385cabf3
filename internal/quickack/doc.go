// Package quickack turns off TCP delayed acknowledgements on a connection
// after every read ([Wrap]; Linux's TCP_QUICKACK, which the kernel resets
// by itself). The MQTT sink and command source use it, and tests that talk
// to Mosquitto: Mosquitto leaves Nagle's algorithm on, so a client that
// waits for an answer otherwise pays up to 40ms of delayed ACK per round
// trip. A wrapped connection may be used as the one it wraps.
package quickack
