module github.com/m2mbridge/m2mbridge

go 1.26

require (
	github.com/eclipse/paho.golang v0.22.0
	github.com/eclipse/paho.mqtt.golang v1.5.0
	github.com/gopcua/opcua v0.9.1
	github.com/nats-io/nats.go v1.37.0
	github.com/prometheus/client_golang v1.20.5
	github.com/simonvetter/modbus v1.6.4
	github.com/stretchr/testify v1.10.0
	github.com/twmb/franz-go v1.18.0
	go.uber.org/goleak v1.3.0
	gopkg.in/yaml.v3 v3.0.1
)

require (
	github.com/beorn7/perks v1.0.1 // indirect
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/davecgh/go-spew v1.1.1 // indirect
	github.com/google/uuid v1.6.0 // indirect
	github.com/munnerz/goautoneg v0.0.0-20191010083416-a7dc8b61c822 // indirect
	github.com/pierrec/lz4/v4 v4.1.21 // indirect
	github.com/pmezard/go-difflib v1.0.0 // indirect
	github.com/prometheus/client_model v0.6.1 // indirect
	github.com/prometheus/common v0.55.0 // indirect
	github.com/prometheus/procfs v0.15.1 // indirect
	golang.org/x/text v0.16.0 // indirect
	google.golang.org/protobuf v1.34.2 // indirect
)

require (
	github.com/goburrow/serial v0.1.0
	github.com/gorilla/websocket v1.5.3
	github.com/klauspost/compress v1.17.9
	github.com/nats-io/nkeys v0.4.7
	github.com/nats-io/nuid v1.0.1
	github.com/tidwall/gjson v1.10.2
	github.com/tidwall/match v1.1.1
	github.com/tidwall/pretty v1.2.0
	github.com/tidwall/tinylru v1.1.0
	github.com/tidwall/wal v1.1.7
	github.com/twmb/franz-go/pkg/kfake v0.0.0-20241015013301-cea7aa5d8037 // indirect
	github.com/twmb/franz-go/pkg/kmsg v1.9.0 // indirect
	golang.org/x/crypto v0.25.0 // indirect
	golang.org/x/net v0.27.0
	golang.org/x/sync v0.7.0
	golang.org/x/sys v0.28.0
)
