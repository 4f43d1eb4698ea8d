# The Chain of the "Distributed Python" cookbook chapter (its Pyro4 chain topology), as written
# there but for its first line: Pyro5's Pyro4 compatibility layer stands in for Pyro4, and
# Pyro4.core.Proxy is Pyro4.Proxy there. (The printed name also had a line break inside its
# string, "example.\ chainTopology.", which would put spaces in the name: it is one line here.)
from Pyro5.compatibility import Pyro4


@Pyro4.expose
class Chain(object):
    def __init__(self, name, next_server):
        self.name = name
        self.next_serverName = next_server
        self.next_server = None

    def process(self, message):
        if self.next_server is None:
            self.next_server = Pyro4.Proxy("PYRONAME:example.chainTopology." + self.next_serverName)
        if self.name in message:
            print("Back at %s; the chain is closed!" % self.name)
            return ["complete at " + self.name]
        else:
            print("%s forwarding the message to the object %s" % (self.name, self.next_serverName))
            message.append(self.name)
            result = self.next_server.process(message)
            result.insert(0, "passed on from " + self.name)
            return result
