package testline_test

import (
	"fmt"

	"github.com/m2mbridge/m2mbridge/internal/testline"
	"github.com/m2mbridge/m2mbridge/modbus"
)

// ExampleReceive shows what a UART makes of a request sent at other
// settings: unchanged at the same ones, every character a parity error
// (read as 0x00) at the opposite parity, something else at another speed.
func ExampleReceive() {
	req := []byte{0x01, 0x03, 0x00, 0x00, 0x00, 0x01, 0x84, 0x0A}
	even := testline.Settings{Speed: 19200, Parity: modbus.ParityEven}
	odd := testline.Settings{Speed: 19200, Parity: modbus.ParityOdd}
	slow := testline.Settings{Speed: 9600, Parity: modbus.ParityEven}
	fmt.Printf("% X\n", testline.Receive(even, even, req))
	fmt.Printf("% X\n", testline.Receive(even, odd, req))
	fmt.Println(len(testline.Receive(even, slow, req)) < len(req))
	// Output:
	// 01 03 00 00 00 01 84 0A
	// 00 00 00 00 00 00 00 00
	// true
}
