from qakeapi.cli import main

main()
