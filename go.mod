module github.com/m2mbridge/m2mbridge

go 1.26

require (
	github.com/eclipse/paho.golang v0.22.0
	github.com/eclipse/paho.mqtt.golang v1.5.0
	github.com/gopcua/opcua v0.8.0
	github.com/nats-io/nats.go v1.37.0
	github.com/prometheus/client_golang v1.20.5
	github.com/simonvetter/modbus v1.6.4
	github.com/stretchr/testify v1.10.0
	github.com/twmb/franz-go v1.18.0
	go.uber.org/goleak v1.3.0
	gopkg.in/yaml.v3 v3.0.1
)
