package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/eventfold/eventfold/internal/kafka"
)

// kafkaSecurityFlags are the TLS and SASL flags of every command that
// talks to Kafka.
type kafkaSecurityFlags struct {
	tls                                   bool
	tlsCA, tlsCert, tlsKey, tlsServerName string
	tlsInsecure                           bool
	saslMechanism, saslUsername           string
	saslPassword, saslPasswordFile        string
}

func (f *kafkaSecurityFlags) register(fs *flagSet) {
	fs.boolVar(&f.tls, "kafka-tls", false, "connect to Kafka over TLS, trusting the system's roots unless --kafka-tls-ca is given; any --kafka-tls-* flag implies it")
	fs.stringVar(&f.tlsCA, "kafka-tls-ca", "", "PEM file of the CAs that sign the brokers' certificates")
	fs.stringVar(&f.tlsCert, "kafka-tls-cert", "", "PEM client certificate file, for brokers that require one (with --kafka-tls-key)")
	fs.stringVar(&f.tlsKey, "kafka-tls-key", "", "PEM private key file of --kafka-tls-cert")
	fs.stringVar(&f.tlsServerName, "kafka-tls-server-name", "", "name to check in the brokers' certificates instead of each broker's host")
	fs.boolVar(&f.tlsInsecure, "kafka-tls-insecure-skip-verify", false, "trust any broker certificate (tests only: anyone in the path can read and change the traffic)")
	fs.stringVar(&f.saslMechanism, "kafka-sasl-mechanism", "", "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; empty for none")
	fs.stringVar(&f.saslUsername, "kafka-sasl-username", "", "SASL username")
	fs.secretVar(&f.saslPassword, "kafka-sasl-password", "SASL password; prefer --kafka-sasl-password-file or the environment variable, which other users cannot list")
	fs.stringVar(&f.saslPasswordFile, "kafka-sasl-password-file", "", "file holding the SASL password (a trailing newline is ignored)")
}

// apply sets the TLS and SASL settings of kc; kc.Validate checks them.
func (f *kafkaSecurityFlags) apply(kc *kafka.Config) error {
	kc.TLS = kafka.TLSConfig{
		Enabled: f.tls || f.tlsCA != "" || f.tlsCert != "" || f.tlsKey != "" || f.tlsServerName != "" || f.tlsInsecure,
		CAFile:  f.tlsCA, CertFile: f.tlsCert, KeyFile: f.tlsKey,
		ServerName: f.tlsServerName, InsecureSkipVerify: f.tlsInsecure,
	}
	password := f.saslPassword
	if f.saslPasswordFile != "" {
		if password != "" {
			return fmt.Errorf("%w: give --kafka-sasl-password or --kafka-sasl-password-file, not both", errUsage)
		}
		data, err := os.ReadFile(f.saslPasswordFile)
		if err != nil {
			return fmt.Errorf("%w: failed to read SASL password file: %w", errUsage, err)
		}
		// Only the line end goes: spaces may belong to the password.
		if password = strings.TrimRight(string(data), "\r\n"); password == "" {
			return fmt.Errorf("%w: SASL password file %s is empty", errUsage, f.saslPasswordFile)
		}
	}
	kc.SASL = kafka.SASLConfig{Mechanism: f.saslMechanism, Username: f.saslUsername, Password: password}
	return nil
}

// check connects to the brokers once when TLS or SASL is on, so that a
// rejected certificate or password stops the command with its reason
// rather than sarama's "run out of available brokers". Plaintext
// connections keep sarama's own retries and errors.
func (f *kafkaSecurityFlags) check(ctx context.Context, kc kafka.Config) error {
	if !kc.TLS.Enabled && kc.SASL.Mechanism == "" {
		return nil
	}
	return kafka.CheckConnection(ctx, kc)
}

// warn logs the settings that weaken security, so they show in the logs.
func (f *kafkaSecurityFlags) warn(log *slog.Logger, kc kafka.Config) {
	if kc.TLS.InsecureSkipVerify {
		log.Warn("Kafka TLS certificates are not verified (--kafka-tls-insecure-skip-verify)")
	}
	if strings.EqualFold(kc.SASL.Mechanism, kafka.SASLPlain) && !kc.TLS.Enabled {
		log.Warn("SASL PLAIN without TLS sends the Kafka password in clear text")
	}
}
