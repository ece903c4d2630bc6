package yard.interop;

import com.rabbitmq.client.AuthenticationFailureException;
import com.rabbitmq.client.Channel;
import com.rabbitmq.client.Connection;
import com.rabbitmq.client.ConnectionFactory;
import com.rabbitmq.client.DefaultSaslConfig;
import com.rabbitmq.client.GetResponse;
import java.io.FileInputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyFactory;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.Base64;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;

/**
 * The RabbitMQ Java client over TLS against yard's --amqps-listen, trusting only the test's CA
 * (the server's name verified). Prints "OK <check>" per check, exits 1 on the first failure:
 * tls-publish-get (PLAIN, right password), tls-wrong-password (refused:
 * AuthenticationFailureException), external (EXTERNAL with a client certificate: mTLS).
 *
 * Usage: Tls host port ca.pem user password client.pem client-pkcs8.key
 */
public final class Tls {
  public static void main(String[] args) throws Exception {
    String host = args[0], ca = args[2], user = args[3], pass = args[4], cert = args[5], key = args[6];
    int port = Integer.parseInt(args[1]);

    ConnectionFactory f = factory(host, port, context(ca, null, null));
    f.setUsername(user);
    f.setPassword(pass);
    try (Connection c = f.newConnection()) {
      check("tls-publish-get", roundTrip(c, "java-tls").equals("over tls"));
    }

    f.setPassword("wrong");
    try (Connection c = f.newConnection()) {
      check("tls-wrong-password", false);
    } catch (AuthenticationFailureException e) {
      check("tls-wrong-password", e.getMessage().contains("ACCESS_REFUSED"));
    }

    ConnectionFactory ext = factory(host, port, context(ca, cert, key));
    ext.setSaslConfig(DefaultSaslConfig.EXTERNAL);
    try (Connection c = ext.newConnection()) {
      check("external", roundTrip(c, "java-external").equals("over tls"));
    }
  }

  static ConnectionFactory factory(String host, int port, SSLContext ctx) {
    ConnectionFactory f = new ConnectionFactory();
    f.setHost(host);
    f.setPort(port);
    f.useSslProtocol(ctx);
    f.enableHostnameVerification();
    f.setAutomaticRecoveryEnabled(false);
    return f;
  }

  static String roundTrip(Connection c, String queue) throws Exception {
    Channel ch = c.createChannel();
    ch.queueDeclare(queue, false, true, true, null);
    ch.basicPublish("", queue, null, "over tls".getBytes(StandardCharsets.UTF_8));
    GetResponse r = ch.basicGet(queue, true);
    return r == null ? "" : new String(r.getBody(), StandardCharsets.UTF_8);
  }

  static SSLContext context(String caPem, String certPem, String keyPem) throws Exception {
    CertificateFactory cf = CertificateFactory.getInstance("X.509");
    KeyStore trust = KeyStore.getInstance("PKCS12");
    trust.load(null, null);
    try (FileInputStream in = new FileInputStream(caPem)) {
      trust.setCertificateEntry("ca", cf.generateCertificate(in));
    }
    TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
    tmf.init(trust);
    KeyManagerFactory kmf = null;
    if (certPem != null) {
      Certificate cert;
      try (FileInputStream in = new FileInputStream(certPem)) {
        cert = cf.generateCertificate(in);
      }
      String pem = Files.readString(Path.of(keyPem)).replaceAll("-----[A-Z ]+-----", "").replaceAll("\\s", "");
      PrivateKey pk = KeyFactory.getInstance("EC").generatePrivate(new PKCS8EncodedKeySpec(Base64.getDecoder().decode(pem)));
      KeyStore ks = KeyStore.getInstance("PKCS12");
      ks.load(null, null);
      ks.setKeyEntry("client", pk, new char[0], new Certificate[] {cert});
      kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
      kmf.init(ks, new char[0]);
    }
    SSLContext ctx = SSLContext.getInstance("TLSv1.3");
    ctx.init(kmf == null ? null : kmf.getKeyManagers(), tmf.getTrustManagers(), null);
    return ctx;
  }

  static void check(String name, boolean ok) {
    if (!ok) {
      System.out.println("FAIL " + name);
      System.exit(1);
    }
    System.out.println("OK " + name);
  }
}
