package yard.interop;

import com.rabbitmq.client.Channel;
import com.rabbitmq.client.Connection;
import com.rabbitmq.client.ConnectionFactory;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.CountDownLatch;

/**
 * The seed's route-dispatch driver, unchanged in substance: a durable queue "route-dispatch",
 * basicQos(1), manual ack, basicNack with requeue when assigning the route fails.
 *
 * Usage: Driver host port mode, where mode is "work" (assign and ack; a route whose body starts
 * with "nack-once" fails the first time and is nacked with requeue) or "hold" (take one route and
 * never acknowledge it, like a driver app that crashed mid-route). Every event is a stdout line:
 * "READY", "GOT body redelivered", "ACK body", "NACK body".
 */
public final class Driver {
  public static void main(String[] args) throws Exception {
    ConnectionFactory factory = new ConnectionFactory();
    factory.setHost(args[0]);
    factory.setPort(Integer.parseInt(args[1]));
    String mode = args[2];
    Connection connection = factory.newConnection();
    Channel channel = connection.createChannel();
    channel.queueDeclare("route-dispatch", true, false, false, null);
    channel.basicQos(1);
    channel.basicConsume("route-dispatch", false, (tag, delivery) -> {
      String route = new String(delivery.getBody(), StandardCharsets.UTF_8);
      boolean redelivered = delivery.getEnvelope().isRedeliver();
      say("GOT " + route + " " + redelivered);
      if (mode.equals("hold")) {
        return;
      }
      try {
        assignRouteToDriver(route, redelivered);
        channel.basicAck(delivery.getEnvelope().getDeliveryTag(), false);
        say("ACK " + route);
      } catch (Exception e) {
        channel.basicNack(delivery.getEnvelope().getDeliveryTag(), false, true);
        say("NACK " + route);
      }
    }, tag -> {});
    say("READY");
    new CountDownLatch(1).await();
  }

  private static void assignRouteToDriver(String route, boolean redelivered) {
    if (route.startsWith("nack-once") && !redelivered) {
      throw new IllegalStateException("driver app could not take " + route);
    }
  }

  private static synchronized void say(String line) {
    System.out.println(line);
    System.out.flush();
  }
}
