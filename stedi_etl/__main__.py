from stedi_etl.cli import main

main()
