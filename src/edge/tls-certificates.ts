import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureContext } from 'node:tls';
import { ConfigError } from '../errors.js';

export interface CertificateFiles {
  cert: string;
  key: string;
}

/** One certificate read from its files and checked: the names SNI picks it by, and its TLS context. */
export interface LoadedCertificate {
  files: CertificateFiles;
  /** Lower-case DNS names from subjectAltName (else the subject's CN); `*.example.com` for a wildcard. */
  names: string[];
  certPem: string;
  keyPem: string;
  context: SecureContext;
}

/**
 * Reads and checks every certificate now, so a missing file, a non-PEM file or a key that belongs to
 * another certificate is a start-up (or reload) error naming the file and its config key, never a
 * handshake failure later. `where` is the config path of the list (`tls.certificates`).
 */
export function loadCertificates(files: readonly CertificateFiles[], where = 'tls.certificates'): LoadedCertificate[] {
  return files.map((f, i) => loadOne(f, `${where}.${i}`));
}

function loadOne(files: CertificateFiles, path: string): LoadedCertificate {
  const certPem = readPem(files.cert, `${path}.cert`);
  const keyPem = readPem(files.key, `${path}.key`);
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(certPem);
  } catch (err) {
    throw fileError(`${path}.cert`, files.cert, `a PEM certificate: ${(err as Error).message}`);
  }
  let key;
  try {
    key = createPrivateKey(keyPem);
  } catch (err) {
    throw fileError(`${path}.key`, files.key, `a PEM private key: ${(err as Error).message}`);
  }
  if (!x509.checkPrivateKey(key)) throw fileError(`${path}.key`, files.key, `the private key of the certificate in ${files.cert}`);
  const names = certificateNames(x509);
  if (names.length === 0) throw fileError(`${path}.cert`, files.cert, 'a certificate with a DNS name (subjectAltName or CN)');
  // Node's defaults otherwise (ciphers, ECDH curves); TLS 1.0 and 1.1 are refused.
  const context = createSecureContext({ cert: certPem, key: keyPem, minVersion: 'TLSv1.2' });
  return { files, names, certPem, keyPem, context };
}

function readPem(file: string, path: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw fileError(path, file, `a readable file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

function fileError(path: string, file: string, expected: string): ConfigError {
  return new ConfigError([{ path, value: file, expected }]);
}

/** DNS names from subjectAltName (`DNS:a.example.com, IP Address:...`), else the subject's CN. */
export function certificateNames(x509: X509Certificate): string[] {
  const san = x509.subjectAltName;
  if (san !== undefined) {
    const dns = san
      .split(',')
      .map((entry) => entry.trim())
      .filter((entry) => entry.startsWith('DNS:'))
      .map((entry) => entry.slice(4).toLowerCase());
    if (dns.length > 0) return dns;
  }
  const cn = /^CN=(.+)$/m.exec(x509.subject)?.[1];
  return cn === undefined ? [] : [cn.trim().toLowerCase()];
}

/**
 * The certificate for an SNI name: one that names it exactly, then one whose wildcard covers it (one label,
 * as RFC 6125 allows: `*.example.com` covers `a.example.com`, not `a.b.example.com` or `example.com`), else
 * the first, the default (as nginx's default_server).
 */
export function pickCertificate(certs: readonly LoadedCertificate[], servername: string | undefined): LoadedCertificate {
  const name = (servername ?? '').toLowerCase();
  if (name !== '') {
    for (const cert of certs) if (cert.names.includes(name)) return cert;
    const dot = name.indexOf('.');
    if (dot > 0) {
      const wildcard = `*${name.slice(dot)}`;
      for (const cert of certs) if (cert.names.includes(wildcard)) return cert;
    }
  }
  return certs[0]!;
}
