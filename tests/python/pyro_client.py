# The greeter client of the "Distributed Python" cookbook chapter (its Pyro4 recipe), as
# written there but for its first line: Pyro5's Pyro4 compatibility layer stands in for
# Pyro4, whose wire protocol rmi does not speak. It finds the greeter by its name, `server`,
# through the name server (rmi-ns), as PYRO_NS_HOST and PYRO_NS_PORT say.
from Pyro5.compatibility import Pyro4

uri = input("What is the Pyro uri of the greeting object? ").strip()
name = input("What is your name? ").strip()
server = Pyro4.Proxy("PYRONAME:server")
print(server.welcomeMessage(name))
